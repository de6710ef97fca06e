"""`kedge init` preflight, the cluster side: what is already there (issue 24, findings 8, 9, 12).

    manifest-versions  every rendered object's apiVersion is served (release-dependent ones after
                       versions.py picked a version); names the object and the releases
    existing-install   which of init's objects exist: fresh, a previous init that stopped part-way
                       (converge), or an installed kedge (converge)
    cloudcore          a KubeEdge cloudcore running in the cluster (Deployment or pods, a Service on
                       the hub port 10000) — kedge and cloudcore would both act for edge nodes
    crds               kubeedge.io CRDs kedge did not install: the same as kedge's are kept as they
                       are (not re-applied); different ones would be rewritten — an error

Each check adds its CheckResult to the Preflight (preflight.py); `crds` also fills
`Preflight.kept_crds`, the CRD names init leaves alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.cloud.install.versions import MIN_TEXT, for_server, ref
from runtime.errors import AuthError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CRDS, DEPLOYMENTS, PODS, SECRETS, SERVICES

if TYPE_CHECKING:
    from runtime.cloud.install.preflight import Preflight

PART_OF = "app.kubernetes.io/part-of"
HUB_PORT = 10000


def check_versions(pf: Preflight, objs: list[dict[str, Any]], served: set[str]) -> None:
    """`objs` as rendered (newest versions); every one must be servable by this server."""
    _, problems = for_server(objs, served)
    if problems:
        pf.add("manifest-versions", "error",
               "; ".join(p.describe() for p in problems) + f"; kedge supports Kubernetes {MIN_TEXT} or newer",
               [p.describe() for p in problems])  # fmt: skip
    else:
        pf.add("manifest-versions", "ok", "the server serves every manifest's apiVersion")


async def _exists(client: KubeClient, obj: dict[str, Any]) -> bool:
    try:
        res = await client.resolve(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        await client.get(res, meta["name"], namespace=meta.get("namespace"))
    except KubeNotFound:
        return False
    return True


async def check_existing(
    pf: Preflight, client: KubeClient, namespace: str, objs: list[dict[str, Any]]
) -> None:
    """Which of `objs` (rendered for this server) and the CA Secret already exist."""
    found = [ref(o) for o in objs if await _exists(client, o)]
    try:
        await client.get(SECRETS, "kedge-ca", namespace=namespace)
        has_ca = True
    except KubeNotFound:
        has_ca = False
    pf.existing = bool(found) or has_ca
    listed = ", ".join(found) if found else "none of the manifests"
    if has_ca and len(found) == len(objs):
        pf.add("existing-install", "ok", f"kedge already installed in {namespace}: converging", found)
    elif has_ca:
        pf.add("existing-install", "ok", f"kedge's CA exists in {namespace}, {len(found)} of {len(objs)} "
               f"objects exist ({listed}): converging", found)  # fmt: skip
    elif found:
        pf.add("existing-install", "ok", f"a previous init stopped part-way: {len(found)} of {len(objs)} "
               f"objects exist ({listed}), no CA yet: converging", found)  # fmt: skip
    else:
        pf.add("existing-install", "ok", "fresh installation")


def _kedges(obj: dict[str, Any]) -> bool:
    return (obj["metadata"].get("labels") or {}).get(PART_OF) == "kedge"


async def _list(client: KubeClient, res: Any, **kw: Any) -> list[dict[str, Any]]:
    try:
        return (await client.list(res, **kw)).items
    except KubeNotFound:
        return []


async def check_cloudcore(pf: Preflight, client: KubeClient, namespace: str) -> None:
    """KubeEdge's cloudcore (keadm installs Deployment kubeedge/cloudcore, pods labelled
    kubeedge=cloudcore, a Service exposing 10000) anywhere in the cluster."""
    running: list[str] = []
    for d in await _list(client, DEPLOYMENTS, fields={"metadata.name": "cloudcore"}):
        running.append(f"deployment {d['metadata'].get('namespace')}/cloudcore")
    pods = await _list(client, PODS, labels={"kubeedge": "cloudcore"})
    pods += [
        p
        for p in await _list(client, PODS, namespace=namespace)
        if p["metadata"]["name"].startswith("cloudcore")
    ]
    names = sorted({f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in pods})
    running += [f"pod {n}" for n in names]
    services = [
        f"service {s['metadata'].get('namespace')}/{s['metadata']['name']} (port {HUB_PORT})"
        for s in await _list(client, SERVICES)
        if not _kedges(s) and any(p.get("port") == HUB_PORT for p in (s.get("spec") or {}).get("ports") or [])
    ]
    if running:
        found = ", ".join(running + services)
        message = (
            f"KubeEdge's cloudcore runs in this cluster: {found}; kedge and cloudcore would both act "
            "for edge nodes — remove it first (keadm reset), or install beside it"
        )
        pf.add("cloudcore", "error", message, running + services)
    elif services:
        pf.add(
            "cloudcore",
            "warning",
            f"not kedge's, exposing the cloud hub port: {', '.join(services)}",
            services,
        )
    else:
        pf.add("cloudcore", "ok", "no cloudcore in the cluster")


def _strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip_descriptions(v) for v in node]
    return node


def crd_shape(crd: dict[str, Any]) -> dict[str, Any]:
    """What makes two CRDs the same API: group, scope, names, and per version served/storage,
    subresources and the schema without descriptions."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    versions = {
        v["name"]: {
            "served": bool(v.get("served")),
            "storage": bool(v.get("storage")),
            "subresources": v.get("subresources") or {},
            "schema": _strip_descriptions((v.get("schema") or {}).get("openAPIV3Schema") or {}),
        }
        for v in spec.get("versions") or []
    }
    return {"group": spec.get("group"), "scope": spec.get("scope"), "kind": names.get("kind"),
            "plural": names.get("plural"), "versions": versions}  # fmt: skip


def crd_difference(ours: dict[str, Any], theirs: dict[str, Any]) -> str:
    """ "" when the same API; else a short phrase saying where they differ."""
    a, b = crd_shape(ours), crd_shape(theirs)
    if a == b:
        return ""
    if set(a["versions"]) != set(b["versions"]):
        return f"versions {','.join(sorted(b['versions']))} instead of {','.join(sorted(a['versions']))}"
    for name in sorted(a["versions"]):
        va, vb = a["versions"][name], b["versions"][name]
        for key in ("served", "storage", "subresources", "schema"):
            if va[key] != vb[key]:
                return f"{name} {key} differs"
    return "group, scope or names differ"


def installed_by_kedge(crd: dict[str, Any]) -> bool:
    meta = crd.get("metadata") or {}
    return _kedges(crd) or any(m.get("manager") == "kedge" for m in meta.get("managedFields") or [])


async def check_crds(pf: Preflight, client: KubeClient, objs: list[dict[str, Any]]) -> None:
    """kubeedge.io CRDs kedge did not install: keep identical ones, refuse to rewrite others."""
    ours = {o["metadata"]["name"]: o for o in objs if o["kind"] == "CustomResourceDefinition"}
    existing = await _list(client, CRDS)
    kept, differing, others = [], [], []
    for crd in existing:
        name = crd["metadata"]["name"]
        if name in ours and not installed_by_kedge(crd):
            why = crd_difference(ours[name], crd)
            (differing.append(f"{name} ({why})") if why else kept.append(name))
        elif name not in ours and name.endswith(".kubeedge.io"):
            others.append(name)
    pf.kept_crds = kept
    notes = []
    if kept:
        notes.append(f"kept as they are (installed by someone else, same as kedge's): {', '.join(kept)}")
    if others:
        notes.append(f"KubeEdge's other CRDs are installed: {', '.join(sorted(others))}")
    if differing:
        message = (
            f"installed by someone else and different from kedge's: {', '.join(differing)}; init would "
            "rewrite them (and break the program that installed them, e.g. cloudcore)"
        )
        pf.add("crds", "error", "; ".join([message, *notes]), differing)
    elif notes:
        pf.add("crds", "warning" if others else "ok", "; ".join(notes), kept + others)
    else:
        pf.add("crds", "ok", "no kubeedge.io CRDs from another installer")


async def check_cluster(
    pf: Preflight, client: KubeClient, namespace: str, newest: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every cluster-side check on the manifests as rendered (`newest`); returns them at the
    versions this server serves, without the CRDs to keep (init applies exactly that)."""
    served = pf.served if pf.served is not None else await client.served_versions()
    check_versions(pf, newest, served)
    objs, _ = for_server(newest, served)
    for name, check in (
        ("existing-install", check_existing(pf, client, namespace, objs)),
        ("cloudcore", check_cloudcore(pf, client, namespace)),
        ("crds", check_crds(pf, client, objs)),
    ):
        try:
            await check
        except AuthError as exc:  # may create what init installs, but not read all of this
            pf.add(name, "warning", f"not checked: {exc}")
    return objs


def to_apply(pf: Preflight, objs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(objects to apply, refs of the CRDs kept as they are)."""
    kept = [
        o for o in objs if o["kind"] == "CustomResourceDefinition" and o["metadata"]["name"] in pf.kept_crds
    ]
    return [o for o in objs if o not in kept], [ref(o) for o in kept]
