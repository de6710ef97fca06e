"""`kedge reset cloud`: undo what init created, continue past errors, report each (design.md §3).

Order matters: stop the local cloud first (or it re-creates its Secrets), then delete objects while
the API server is still up, then stop the embedded API server and remove local files. CRDs (and
with them every Device) only with --delete-crds; the CA and the namespace only with --purge, since
every joined edge trusts that CA. Safe to run twice: "not found" is success. Never touches an
edge's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.cloud import init_procs, init_systemd
from runtime.cloud.init_existing import installed_by_kedge
from runtime.cloud.init_run import InstallRecord, remove_local_files
from runtime.cloud.install import InstallOptions, render
from runtime.cloud.install_versions import ref
from runtime.errors import KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CRDS, DEVICEMODELS, DEVICES, DEVICESTATUSES, NAMESPACES, SECRETS, Res
from runtime.paths import Paths
from runtime.pki import store


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
    objs = render(InstallOptions(mode="cluster", namespace=namespace), served=served)
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
    items: list[ResetItem] = []
    if delete_crds:  # custom resources before their CRDs, so finalizers can still run
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
    try:
        served: set[str] | None = await client.served_versions()
    except KedgeError:
        served = None  # then the newest versions; a failure shows per object below
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
    # Secrets the cloud created: tokens, signing key, serving certificate (CA only with --purge)
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
    if purge:
        items.append(await _delete(client, NAMESPACES, namespace, None, f"namespace/{namespace}", dry_run))
    return items


def stop_unit(root: Path, dry_run: bool) -> list[ResetItem]:
    """Host mode under systemd: the kedge-cloud.service unit (root / only)."""
    if root.resolve() != Path("/") or not init_systemd.installed():
        return []
    label = f"systemd unit {init_systemd.UNIT_NAME}"
    if dry_run:
        return [ResetItem(label, "would stop")]
    try:
        init_systemd.remove()
    except OSError as exc:
        return [ResetItem(label, "failed", str(exc))]
    return [ResetItem(label, "removed")]


def stop_local(root: Path, role: str, dry_run: bool) -> ResetItem:
    pid = init_procs.running_pid(root, role)  # type: ignore[arg-type]
    label = (
        f"process kedge {'cloud run' if role == 'cloud' else role} (pid {pid})" if pid else f"process {role}"
    )
    if pid is None:
        return ResetItem(label, "not running")
    if dry_run:
        return ResetItem(label, "would stop")
    try:
        init_procs.stop_process(root, role)  # type: ignore[arg-type]
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
