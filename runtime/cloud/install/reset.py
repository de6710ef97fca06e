"""`kedge reset cloud`: undo what init created, continue past errors, report each (design.md §3).

Order matters: stop the local cloud first (or it re-creates its Secrets), then delete objects while
the API server is still up, then stop the embedded API server and remove local files. CRDs (and
with them every Device) only with --delete-crds; the CA and the namespace only with --purge, since
every joined edge trusts that CA. Safe to run twice: "not found" is success. Never touches an
edge's files.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cloud import pki_store as store
from runtime.cloud.install import procs, systemd
from runtime.cloud.install.existing import installed_by_kedge
from runtime.cloud.install.manifests import InstallOptions, render
from runtime.cloud.install.steps import InstallRecord, connect, remove_local_files, using
from runtime.cloud.install.versions import ref
from runtime.cloud.tunnel import ports as tunnel_ports
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CRDS, DEVICEMODELS, DEVICES, DEVICESTATUSES, NAMESPACES, SECRETS, Res
from runtime.paths import Paths


@dataclass
class ResetItem:
    what: str
    outcome: str  # deleted | not found | would delete | kept (…) | stopped | not running | removed | failed
    error: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"object": self.what, "result": self.outcome, **({"error": self.error} if self.error else {})}


def planned_objects(
    namespace: str, *, delete_crds: bool, served: set[str] | None = None
) -> list[dict[str, Any]]:
    """The rendered objects reset removes (namespace never here: --purge handles it), at the
    versions the server serves (a FlowSchema is flowcontrol v1beta3 on 1.28, v1 from 1.29)."""
    # every optional part included (the tunnel DaemonSet too): what was not installed is "not found"
    objs = render(InstallOptions(mode="cluster", namespace=namespace, stream_tunnel="dnat"), served=served)
    keep = []
    for o in objs:
        if o["kind"] == "Namespace":
            continue
        if o["kind"] == "CustomResourceDefinition" and not delete_crds:
            continue
        keep.append(o)
    return keep


async def _delete(client: KubeClient, res: Res, name: str, namespace: str | None, label: str,
                  dry_run: bool) -> ResetItem:  # fmt: skip
    if dry_run:
        try:
            await client.get(res, name, namespace=namespace)
        except KubeNotFound:
            return ResetItem(label, "not found")
        except KedgeError as exc:
            return ResetItem(label, "failed", str(exc))
        return ResetItem(label, "would delete")
    try:
        await client.delete(res, name, namespace=namespace, propagation="Background")
    except KubeNotFound:
        return ResetItem(label, "not found")
    except KedgeError as exc:
        return ResetItem(label, "failed", str(exc))
    return ResetItem(label, "deleted")


async def delete_cluster_objects(
    client: KubeClient, namespace: str, *, delete_crds: bool, purge: bool, dry_run: bool
) -> list[ResetItem]:
    """Custom resources (with --delete-crds), init's objects, the cloud's Secrets, the namespace (--purge)."""
    items: list[ResetItem] = []
    if delete_crds:  # custom resources before their CRDs, so finalizers can still run
        items += await _delete_custom_resources(client, dry_run)
    items += await _delete_installed(client, namespace, delete_crds=delete_crds, dry_run=dry_run)
    items += await _delete_secrets(client, namespace, purge=purge, dry_run=dry_run)
    items.append(await _release_tunnel_ports(client, namespace, dry_run))
    if purge:
        items.append(await _delete(client, NAMESPACES, namespace, None, f"namespace/{namespace}", dry_run))
    return items


async def _delete_custom_resources(client: KubeClient, dry_run: bool) -> list[ResetItem]:
    items: list[ResetItem] = []
    for res in (DEVICES, DEVICESTATUSES, DEVICEMODELS):
        try:
            found = (await client.list(res)).items
        except KubeNotFound:
            continue
        except KedgeError as exc:
            items.append(ResetItem(f"{res.plural}.{res.group}", "failed", str(exc)))
            continue
        for o in found:
            meta = o["metadata"]
            label = f"{res.kind.lower()}.{res.group}/{meta['name']} (ns {meta.get('namespace')})"
            items.append(await _delete(client, res, meta["name"], meta.get("namespace"), label, dry_run))
    return items


async def _delete_installed(
    client: KubeClient, namespace: str, *, delete_crds: bool, dry_run: bool
) -> list[ResetItem]:
    """What init applied, in reverse order; a CRD another installer put there is kept."""
    try:
        served: set[str] | None = await client.served_versions()
    except KedgeError:
        served = None  # then the newest versions; a failure shows per object below
    items: list[ResetItem] = []
    for obj in reversed(planned_objects(namespace, delete_crds=delete_crds, served=served)):
        meta = obj["metadata"]
        try:
            res = await client.resolve(obj["apiVersion"], obj["kind"])
            if res == CRDS and not installed_by_kedge(await client.get(CRDS, meta["name"])):
                items.append(ResetItem(ref(obj), "kept (not installed by kedge)"))
                continue
        except KubeNotFound:
            items.append(ResetItem(ref(obj), "not found"))
            continue
        except KedgeError as exc:
            items.append(ResetItem(ref(obj), "failed", str(exc)))
            continue
        items.append(await _delete(client, res, meta["name"], meta.get("namespace"), ref(obj), dry_run))
    return items


async def _release_tunnel_ports(client: KubeClient, namespace: str, dry_run: bool) -> ResetItem:
    """The replicas' tunnel port claims (--stream-tunnel dnat): released, the ConfigMap gone when empty."""
    label = f"configmap/{tunnel_ports.CONFIGMAP} (tunnel ports)"
    try:
        return ResetItem(label, await tunnel_ports.release_kedge(client, namespace, dry_run=dry_run))
    except KedgeError as exc:
        return ResetItem(label, "failed", str(exc))


async def _delete_secrets(
    client: KubeClient, namespace: str, *, purge: bool, dry_run: bool
) -> list[ResetItem]:
    """Secrets the cloud created: tokens, signing key, serving certificate (CA only with --purge)."""
    items: list[ResetItem] = []
    try:
        tokens = (await client.list(SECRETS, namespace=namespace, labels=store.TOKEN_SELECTOR)).items
    except KubeNotFound:
        tokens = []
    except KedgeError as exc:
        items.append(ResetItem(f"secrets -l {store.TOKEN_SELECTOR}", "failed", str(exc)))
        tokens = []
    names = [t["metadata"]["name"] for t in tokens] + [store.SIGNING_SECRET, store.SERVING_SECRET]
    if purge:
        names.append(store.CA_SECRET)
    for name in names:
        items.append(await _delete(client, SECRETS, name, namespace, f"secret/{name}", dry_run))
    return items


def stop_unit(root: Path, dry_run: bool) -> list[ResetItem]:
    """Host mode under systemd: the kedge-cloud.service unit (root / only)."""
    if root.resolve() != Path("/") or not systemd.installed():
        return []
    label = f"systemd unit {systemd.UNIT_NAME}"
    if dry_run:
        return [ResetItem(label, "would stop")]
    try:
        systemd.remove()
    except OSError as exc:
        return [ResetItem(label, "failed", str(exc))]
    return [ResetItem(label, "removed")]


def stop_local(root: Path, role: str, dry_run: bool) -> ResetItem:
    pid = procs.running_pid(root, role)  # type: ignore[arg-type]
    label = (
        f"process kedge {'cloud run' if role == 'cloud' else role} (pid {pid})" if pid else f"process {role}"
    )
    if pid is None:
        return ResetItem(label, "not running")
    if dry_run:
        return ResetItem(label, "would stop")
    try:
        procs.stop_process(root, role)  # type: ignore[arg-type]
    except OSError as exc:
        return ResetItem(label, "failed", str(exc))
    return ResetItem(label, "stopped")


def is_embedded(root: Path, record: InstallRecord | None) -> bool:
    """Embedded install: by the record, or — once a first reset removed the record — by the embedded
    API server's data still under the root (so a second reset, or a later --purge, knows it)."""
    if record is not None:
        return record.mode == "embedded"
    return Paths.of(root, "apiserver").state.exists()


def local_cleanup(root: Path, record: InstallRecord | None, *, purge: bool, dry_run: bool) -> list[ResetItem]:
    embedded = is_embedded(root, record)
    if dry_run:
        return [ResetItem("local files of the cloud role under " + str(root), "would delete")]
    return [ResetItem(p, "removed") for p in remove_local_files(root, embedded=embedded, purge=purge)]


def reset_cloud(
    kubeconfig: Path | None, root: Path, *, dry_run: bool, delete_crds: bool, purge: bool,
    note: Callable[[str], None],
) -> list[dict[str, Any]]:  # fmt: skip
    """`kedge reset cloud`, one reset per root at a time: every step's row (object, result[, error]);
    `note` hears which kubeconfig is used. --kubeconfig, else the one init recorded."""
    record = InstallRecord.load(root)
    if kubeconfig is None and record and record.kubeconfig and os.path.isfile(record.kubeconfig):
        kubeconfig = Path(record.kubeconfig)
    with procs.exclusive(root, "reset"):
        return asyncio.run(_reset_cloud(kubeconfig, root, record, dry_run, delete_crds, purge, note))


async def _reset_cloud(
    kubeconfig: Path | None, root: Path, record: InstallRecord | None, dry_run: bool, delete_crds: bool,
    purge: bool, note: Callable[[str], None],
) -> list[dict[str, Any]]:  # fmt: skip
    """Stop the local cloud, delete the cluster's objects, stop the embedded API server, remove files."""
    namespace = record.namespace if record else "kubeedge"
    items = [*stop_unit(root, dry_run), stop_local(root, "cloud", dry_run)]
    embedded = is_embedded(root, record)
    # an embedded API server that is not running holds nothing to delete (its data stays until --purge)
    if not (embedded and procs.running_pid(root, "apiserver") is None):
        items += await _reset_cluster(kubeconfig, root, namespace, dry_run, delete_crds, purge, note)
    if embedded:
        items.append(stop_local(root, "apiserver", dry_run))
    items += local_cleanup(root, record, purge=purge, dry_run=dry_run)
    return [i.as_dict() for i in items]


async def _reset_cluster(
    kubeconfig: Path | None, root: Path, namespace: str, dry_run: bool, delete_crds: bool, purge: bool,
    note: Callable[[str], None],
) -> list[ResetItem]:  # fmt: skip
    try:
        client = connect(kubeconfig, root)
    except KedgeError as exc:
        return [ResetItem("Kubernetes API", "failed", str(exc))]
    note(using(client))
    async with client:
        return await delete_cluster_objects(
            client, namespace, delete_crds=delete_crds, purge=purge, dry_run=dry_run
        )
