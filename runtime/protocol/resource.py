"""Resource strings as KubeEdge puts them in ``route.resource`` (design.md §4).

Wire form ``<namespace>/<type>/<name>``; cluster-scoped objects use the namespace ``null``
(``null/node/edge-1``). Inside the cloud a resource carries a ``node/<node>/`` prefix which cloudhub
strips on the way down and adds on the way up. KubeEdge also sends shorter shapes (``node`` for
keepalives, ``membership`` and ``membership/detail`` for the twin) — those parse too, see
``parse_resource``.
"""

from __future__ import annotations

from dataclasses import dataclass

RT_POD = "pod"
RT_CONFIGMAP = "configmap"
RT_SECRET = "secret"
RT_NODE = "node"
RT_NODEPATCH = "nodepatch"
RT_PODPATCH = "podpatch"
RT_PODSTATUS = "podstatus"
RT_LEASE = "lease"
RT_EVENT = "event"
RT_SERVICEACCOUNTTOKEN = "serviceaccounttoken"
RT_DEVICE = "device"
RT_DEVICEMODEL = "devicemodel"
RT_MEMBERSHIP = "membership"
RT_TWIN = "twin"
RT_NODEUSAGE = "nodeusage"  # kedge only: resource usage for `kubectl top` (runtime/edge/usage)

CLUSTER_NAMESPACE = "null"
NODE_PREFIX = "node"


@dataclass(frozen=True)
class Resource:
    """A parsed resource. ``namespace`` is ``"null"`` for cluster-scoped objects and ``""`` when the
    string had no namespace segment (the 1- and 2-segment shapes); ``name`` is ``""`` when absent."""

    namespace: str
    type: str
    name: str

    def __str__(self) -> str:
        if not self.namespace:
            return f"{self.type}/{self.name}" if self.name else self.type
        return f"{self.namespace}/{self.type}/{self.name}"

    @property
    def cluster_scoped(self) -> bool:
        return self.namespace == CLUSTER_NAMESPACE

    @property
    def k8s_namespace(self) -> str | None:
        """The namespace as Kubernetes sees it: None for cluster-scoped or namespace-less."""
        return None if self.namespace in ("", CLUSTER_NAMESPACE) else self.namespace


def parse_resource(s: str) -> Resource | None:
    """Parse without judging the type. Never raises.

    ``"t"`` → Resource("", t, ""); ``"t/n"`` → Resource("", t, n) (e.g. ``membership/detail``);
    ``"ns/t/n"`` → Resource(ns, t, n); with more segments the name keeps the rest (``ns/t/a/b`` →
    name ``a/b``). Returns None for shapes that are not resources: not a string, empty, or an empty
    namespace/type segment (``"/x"``, ``"a//b"``, trailing ``/``). Strip a ``node/<id>/`` prefix
    first with ``strip_node_prefix``.
    """
    if not isinstance(s, str) or not s:
        return None
    parts = s.split("/")
    if len(parts) >= 3:
        ns, typ, name = parts[0], parts[1], "/".join(parts[2:])
    elif len(parts) == 2:
        ns, typ, name = "", parts[0], parts[1]
    else:
        ns, typ, name = "", parts[0], ""
    if any(p == "" for p in parts):
        return None
    return Resource(ns, typ, name)


def build_resource(namespace: str | None, type: str, name: str) -> str:
    """``<ns>/<type>/<name>``; a None or empty namespace means cluster-scoped (``null``)."""
    return f"{namespace or CLUSTER_NAMESPACE}/{type}/{name}"


def add_node_prefix(node: str, resource: str) -> str:
    """Cloud-internal form: ``node/<node>/<resource>``."""
    return f"{NODE_PREFIX}/{node}/{resource}"


def strip_node_prefix(resource: str) -> tuple[str | None, str]:
    """``node/<node>/<rest>`` → (node, rest); anything else → (None, resource) unchanged.

    Needs at least one segment after the node id, so the keepalive's bare ``node`` and a 2-segment
    ``node/x`` are left alone. (Like KubeEdge, a namespace literally called ``node`` is ambiguous here;
    only call this on cloud-internal strings, which always carry the prefix.)
    """
    parts = resource.split("/", 2)
    if len(parts) == 3 and parts[0] == NODE_PREFIX and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None, resource


# Metric labels come from peers; anything unknown is folded into "other" so a peer cannot grow a
# metric's cardinality without bound (both roles count messages by these).
_METRIC_OPERATIONS = frozenset("insert update patch delete query get response error upload keepalive".split())
_METRIC_TYPES = frozenset(
    "pod configmap secret node nodepatch podpatch podstatus lease event serviceaccounttoken device "
    "devicemodel membership twin nodeusage".split()
)


def metric_labels(operation: str, resource: str) -> tuple[str, str]:
    """(operation, resource type) for metric labels, bounded to known values."""
    parts = resource.split("/")
    typ = parts[1] if len(parts) >= 3 else parts[0]
    return (
        operation if operation in _METRIC_OPERATIONS else "other",
        typ if typ in _METRIC_TYPES else "other",
    )
