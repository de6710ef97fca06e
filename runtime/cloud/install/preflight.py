"""`kedge init` preflight: named checks that run before anything changes (design.md §7, issue 6).

Each check returns a CheckResult (ok / warning / error, with a message naming the object and the
fix). `--ignore-preflight-errors=NAME,…|all` turns the named errors into warnings. Checks:

    api-version         API reachable; Kubernetes 1.28 or newer (versions.MIN_KUBERNETES)
    manifest-versions   every manifest's apiVersion is served            } existing.py: what
    permissions         the kubeconfig may create what init creates (SelfSubjectAccessReview)
    advertise-address   every --advertise-address is an IP or a DNS name
    ports               host/embedded: the cloud's ports are free on this machine
    existing-install    which of init's objects exist (fresh / part-way / installed: converge) }
    cloudcore           KubeEdge's cloudcore already runs in the cluster                     } the cluster
    crds                kubeedge.io CRDs another installer put there (same: kept; else refused) } holds
    edge-daemonsets     DaemonSets that would land on edge nodes (kube-proxy, CNI agents crash-loop there)
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.cloud.install.versions import MIN_KUBERNETES, MIN_TEXT
from runtime.errors import KedgeError, PreflightFailed
from runtime.kube.client import KubeClient
from runtime.kube.errors import Forbidden, KubeNotFound
from runtime.kube.resources import DAEMONSETS, Res

Level = Literal["ok", "warning", "error"]
CHECKS = (
    "api-version", "manifest-versions", "permissions", "advertise-address", "ports", "existing-install",
    "cloudcore", "crds", "edge-daemonsets",
)  # fmt: skip
EDGE_LABEL = "node-role.kubernetes.io/edge"
_DNS = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
SSAR = Res("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False)

# (verb, group, resource, namespace) init needs; namespace None = cluster scope
NEEDED: tuple[tuple[str, str, str, str | None], ...] = (
    ("create", "", "namespaces", None),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", None),
    ("create", "rbac.authorization.k8s.io", "clusterroles", None),
    ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
    ("create", "", "secrets", "kubeedge"),
    ("create", "apps", "deployments", "kubeedge"),
    ("create", "", "services", "kubeedge"),
)


@dataclass
class CheckResult:
    name: str
    level: Level
    message: str
    details: list[str] = field(default_factory=list)


@dataclass
class Preflight:
    results: list[CheckResult] = field(default_factory=list)
    daemonsets: list[dict[str, Any]] = field(default_factory=list)  # the ones edge-daemonsets listed
    existing: bool = False
    served: set[str] | None = None  # the server's group/versions (check_api), None if unknown
    kept_crds: list[str] = field(default_factory=list)  # CRDs init leaves alone (existing.check_crds)

    def add(self, name: str, level: Level, message: str, details: list[str] | None = None) -> None:
        self.results.append(CheckResult(name, level, message, details or []))

    def enforce(self, ignore: Iterable[str]) -> list[CheckResult]:
        """Downgrade ignored errors to warnings; raise PreflightFailed naming every remaining error."""
        ignored = {i.strip() for i in ignore if i.strip()}
        unknown = ignored - set(CHECKS) - {"all"}
        if unknown:
            raise KedgeError(
                f"--ignore-preflight-errors: unknown check(s) {', '.join(sorted(unknown))}",
                hint=f"known checks: {', '.join(CHECKS)}, or all",
            )
        for r in self.results:
            if r.level == "error" and ("all" in ignored or r.name in ignored):
                r.level = "warning"
                r.message += " (ignored)"
        failed = [r for r in self.results if r.level == "error"]
        if failed:
            lines = "; ".join(f"[{r.name}] {r.message}" for r in failed)
            raise PreflightFailed(
                f"preflight failed: {lines}",
                failed=[r.name for r in failed],
                hint="fix the above, or pass --ignore-preflight-errors=" + ",".join(r.name for r in failed),
            )
        return self.results


def valid_address(addr: str) -> bool:
    try:
        ipaddress.ip_address(addr)
        return True
    except ValueError:
        return bool(_DNS.match(addr.lower()))


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _version_tuple(info: dict[str, Any]) -> tuple[int, int]:
    major = int(re.sub(r"\D", "", str(info.get("major", "0"))) or 0)
    minor = int(re.sub(r"\D", "", str(info.get("minor", "0"))) or 0)
    return major, minor


async def check_api(pf: Preflight, client: KubeClient) -> None:
    """The server's version (≥ MIN_KUBERNETES) and, into `pf.served`, what it serves."""
    info = await client.request("GET", "/version")  # Unreachable propagates: exit 4, not a preflight
    major, minor = _version_tuple(info)
    version = info.get("gitVersion") or f"v{major}.{minor}"
    try:
        await client.request("GET", "/apis/apiextensions.k8s.io/v1")
        pf.served = await client.served_versions()
    except KubeNotFound:
        pf.add("api-version", "error", f"{client.server} runs {version}: no apiextensions.k8s.io/v1; "
               f"kedge supports Kubernetes {MIN_TEXT} or newer")  # fmt: skip
        return
    if (major, minor) < MIN_KUBERNETES and major != 0:
        message = f"{client.server} runs {version}; kedge supports Kubernetes {MIN_TEXT} or newer"
        pf.add("api-version", "error", message)
        return
    pf.add("api-version", "ok", f"{client.server} runs {version}")


async def check_permissions(pf: Preflight, client: KubeClient) -> None:
    denied = []
    for verb, group, resource, namespace in NEEDED:
        attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": resource}
        if namespace:
            attrs["namespace"] = namespace
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs}}  # fmt: skip
        try:
            review = await client.create(SSAR, body)
        except KubeNotFound:
            pf.add("permissions", "warning", "the API server has no SelfSubjectAccessReview; not checked")
            return
        except Forbidden as exc:
            pf.add("permissions", "error", f"cannot even ask what is allowed: {exc}")
            return
        if not (review.get("status") or {}).get("allowed"):
            where = f" in namespace {namespace}" if namespace else ""
            denied.append(f"{verb} {resource}{'.' + group if group else ''}{where}")
    if denied:
        pf.add("permissions", "error", "the kubeconfig's user may not " + ", ".join(denied), denied)
    else:
        pf.add("permissions", "ok", "allowed to create everything init installs")


def check_addresses(pf: Preflight, addresses: list[str]) -> None:
    bad = [a for a in addresses if not valid_address(a)]
    if bad:
        pf.add("advertise-address", "error", f"not an IP address or DNS name: {', '.join(bad)}")
    elif not addresses:
        pf.add("advertise-address", "warning", "no --advertise-address: the serving certificate covers "
               "127.0.0.1 and localhost only, so remote edges cannot verify it")  # fmt: skip
    else:
        pf.add("advertise-address", "ok", ", ".join(addresses))


def check_ports(pf: Preflight, ports: list[tuple[str, int]]) -> None:
    busy = [f"{h}:{p}" for h, p in ports if p and not port_free(h, p)]
    if busy:
        pf.add(
            "ports",
            "error",
            f"in use on this machine: {', '.join(busy)}",
        )
    else:
        pf.add("ports", "ok", "free: " + ", ".join(f"{h}:{p}" for h, p in ports if p))


def excludes_edge(ds: dict[str, Any]) -> bool:
    """True if the DaemonSet's pods cannot land on edge nodes (affinity or nodeSelector says so)."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    selector = spec.get("nodeSelector") or {}
    if selector and EDGE_LABEL not in selector:
        return True  # selects specific nodes; edge nodes carry no kedge-specific labels beyond role
    node_aff = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return False
    return all(
        any(e.get("key") == EDGE_LABEL and e.get("operator") == "DoesNotExist"
            for e in (t.get("matchExpressions") or []))
        for t in terms
    )  # fmt: skip


async def check_daemonsets(pf: Preflight, client: KubeClient) -> None:
    try:
        items = (await client.list(DAEMONSETS)).items
    except KubeNotFound:
        items = []
    landing = [d for d in items if not excludes_edge(d)]
    pf.daemonsets = landing
    if landing:
        names = [f"{d['metadata'].get('namespace')}/{d['metadata']['name']}" for d in landing]
        message = (
            f"{len(names)} DaemonSet(s) would also run on edge nodes (kube-proxy and CNI agents "
            f"crash-loop there): {', '.join(names)}; --patch-daemonsets adds a "
            "node-role.kubernetes.io/edge DoesNotExist affinity"
        )
        pf.add("edge-daemonsets", "warning", message, names)
    else:
        pf.add("edge-daemonsets", "ok", "no DaemonSet would land on edge nodes")


def edge_exclusion_patch(ds: dict[str, Any]) -> dict[str, Any]:
    """Merge patch adding `node-role.kubernetes.io/edge DoesNotExist` to every required term."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    affinity = dict(spec.get("affinity") or {})
    node_aff = dict(affinity.get("nodeAffinity") or {})
    required = dict(node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = [dict(t) for t in (required.get("nodeSelectorTerms") or [])] or [{}]
    expr = {"key": EDGE_LABEL, "operator": "DoesNotExist"}
    for t in terms:
        exprs = list(t.get("matchExpressions") or [])
        if expr not in exprs:
            exprs.append(expr)
        t["matchExpressions"] = exprs
    required["nodeSelectorTerms"] = terms
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = required
    affinity["nodeAffinity"] = node_aff
    return {"spec": {"template": {"spec": {"affinity": affinity}}}}


async def patch_daemonsets(client: KubeClient, daemonsets: list[dict[str, Any]]) -> list[str]:
    done = []
    for ds in daemonsets:
        meta = ds["metadata"]
        await client.patch(
            DAEMONSETS, meta["name"], edge_exclusion_patch(ds), namespace=meta.get("namespace")
        )
        done.append(f"{meta.get('namespace')}/{meta['name']}")
    return done
