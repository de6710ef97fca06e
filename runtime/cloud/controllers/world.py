"""The cloud's view of what each edge node should hold: its Node, its pods and what they reference.

Why one in-memory model fed by four watches: the edge controller must answer "what changed for node
N?" on every event and "may node N read this?" on every request, both in microseconds and without an
API call. The model is sans-I/O (the watches feed ``apply``), so its rules are tested without a cluster.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from runtime.cloud.controllers.refs import PodRefs, pod_refs
from runtime.protocol import RT_CONFIGMAP, RT_NODE, RT_POD, RT_SECRET, build_resource
from runtime.protocol.delivery import Current

Obj = dict[str, Any]
EDGE_LABEL = "node-role.kubernetes.io/edge"
KIND_TYPES = {"Node": RT_NODE, "Pod": RT_POD, "ConfigMap": RT_CONFIGMAP, "Secret": RT_SECRET}
UNKNOWN_REASON = "NodeStatusUnknown"  # what the node-lifecycle controller writes
RefKey = tuple[str, str, str]  # (configmap|secret, namespace, name)


def meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def rv_of(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion") or "")


def wire_resource(obj: Obj, typ: str) -> str:
    m = meta(obj)
    return build_resource(m.get("namespace") or None, typ, str(m.get("name") or ""))


class World:
    """Edge nodes, pods bound to them, and the ConfigMaps/Secrets those pods reference."""

    def __init__(self) -> None:
        self.nodes: dict[str, Obj] = {}  # edge node name -> Node
        self.pods: dict[str, Obj] = {}  # uid -> pod bound to any node
        self.pod_refs: dict[str, PodRefs] = {}
        self.pods_by_node: dict[str, set[str]] = defaultdict(set)
        self.ref_keys: dict[str, tuple[RefKey, ...]] = {}  # pod uid -> what it references
        self.objects: dict[RefKey, Obj] = {}  # referenced-kind objects, all namespaces
        self.ref_nodes: dict[RefKey, Counter[str]] = defaultdict(Counter)  # who references what
        self.last_ready: dict[str, Obj] = {}  # node -> Ready condition as last reported by its edge
        self.ready_unknown: set[str] = set()  # nodes the node-lifecycle controller set Ready=Unknown

    # --- feeding -----------------------------------------------------------------------------

    def apply(self, kind: str, event: str, obj: Obj) -> set[str]:
        """Feed one watch event (ADDED/MODIFIED/SYNC/DELETED); returns the edge nodes it concerns."""
        deleted = event == "DELETED"
        if kind == "Node":
            return self._node(obj, deleted)
        if kind == "Pod":
            return self._pod(obj, deleted)
        typ = KIND_TYPES.get(kind)
        if typ is None:
            return set()
        key = (typ, str(meta(obj).get("namespace") or ""), str(meta(obj).get("name") or ""))
        if deleted:
            self.objects.pop(key, None)
        else:
            self.objects[key] = obj
        return {n for n in self.ref_nodes.get(key, ()) if n in self.nodes}

    def _node(self, obj: Obj, deleted: bool) -> set[str]:
        name = str(meta(obj).get("name") or "")
        is_edge = EDGE_LABEL in (meta(obj).get("labels") or {})
        if deleted or not is_edge:
            self.last_ready.pop(name, None)
            self.ready_unknown.discard(name)
            return {name} if self.nodes.pop(name, None) is not None else set()
        self.nodes[name] = obj
        self._ready(name, obj)
        return {name}

    def _ready(self, name: str, obj: Obj) -> None:
        """Remember the edge's own Ready so it can be put back after the node-lifecycle controller
        marked it Unknown while the cloud lagged or was away (a kedge edge re-sends only changes)."""
        conds = (obj.get("status") or {}).get("conditions") or []
        ready = next((c for c in conds if isinstance(c, dict) and c.get("type") == "Ready"), None)
        if ready is None:
            return
        if ready.get("status") == "Unknown" and ready.get("reason") == UNKNOWN_REASON:
            self.ready_unknown.add(name)
        else:
            self.ready_unknown.discard(name)
            self.last_ready[name] = ready

    def _pod(self, obj: Obj, deleted: bool) -> set[str]:
        uid = uid_of(obj)
        old = self.pods.pop(uid, None)
        touched: set[str] = set()
        if old is not None:
            old_node = node_of(old)
            self.pods_by_node[old_node].discard(uid)
            if not self.pods_by_node[old_node]:
                del self.pods_by_node[old_node]
            for key in self.ref_keys.pop(uid, ()):
                self._dec(key, old_node)
            self.pod_refs.pop(uid, None)
            touched.add(old_node)
        node = node_of(obj)
        if not deleted and node:
            self.pods[uid] = obj
            self.pods_by_node[node].add(uid)
            refs = pod_refs(obj)
            self.pod_refs[uid] = refs
            ns = str(meta(obj).get("namespace") or "")
            keys = tuple(
                [(RT_CONFIGMAP, ns, n) for n in sorted(refs.configmaps)]
                + [(RT_SECRET, ns, n) for n in sorted(refs.secrets)]
            )
            self.ref_keys[uid] = keys
            for key in keys:
                self.ref_nodes[key][node] += 1
            touched.add(node)
        return {n for n in touched if n in self.nodes}

    def _dec(self, key: RefKey, node: str) -> None:
        c = self.ref_nodes.get(key)
        if c is None:
            return
        c[node] -= 1
        if c[node] <= 0:
            del c[node]
        if not c:
            del self.ref_nodes[key]

    # --- questions ---------------------------------------------------------------------------

    def references(self, node: str, typ: str, namespace: str, name: str) -> bool:
        """Node-authorizer check: does a pod on ``node`` reference this ConfigMap/Secret?"""
        return self.ref_nodes.get((typ, namespace, name), Counter()).get(node, 0) > 0

    def pod_for_token(self, node: str, namespace: str, sa: str, pod_name: str, pod_uid: str) -> Obj | None:
        """The pod a service-account token may be bound to: on ``node``, running as ``sa``."""
        for uid in self.pods_by_node.get(node, ()):
            pod = self.pods[uid]
            m = meta(pod)
            if (
                m.get("namespace") == namespace
                and m.get("name") == pod_name
                and (not pod_uid or uid == pod_uid)
                and self.pod_refs[uid].service_account == sa
            ):
                return pod
        return None

    def pod_on(self, node: str, namespace: str, name: str) -> Obj | None:
        for uid in self.pods_by_node.get(node, ()):
            m = meta(self.pods[uid])
            if m.get("namespace") == namespace and m.get("name") == name:
                return self.pods[uid]
        return None

    def desired(self, node: str) -> dict[str, Current]:
        """{uid: Current} of everything ``node`` should hold: its Node, its pods, their references."""
        out: dict[str, Current] = {}
        n = self.nodes.get(node)
        if n is None:
            return out
        out[uid_of(n)] = Current(wire_resource(n, RT_NODE), rv_of(n), n)
        for uid in self.pods_by_node.get(node, ()):
            pod = self.pods[uid]
            out[uid] = Current(wire_resource(pod, RT_POD), rv_of(pod), pod)
            for key in self.ref_keys.get(uid, ()):
                obj = self.objects.get(key)
                if obj is not None and uid_of(obj):
                    out[uid_of(obj)] = Current(wire_resource(obj, key[0]), rv_of(obj), obj)
        return out


def node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")
