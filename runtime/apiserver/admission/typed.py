"""Zero values a typed server always serialises.

kube-apiserver decodes every write into Go structs and encodes them back, so fields without `omitempty`
(and struct-valued fields, which `omitempty` does not drop) appear even when nobody set them: pod
conditions carry `lastProbeTime: null`, container statuses `lastState: {}` and `restartCount: 0`, a
node's status always has `daemonEndpoints` and a `nodeInfo` full of empty strings (the recorded
KubeEdge session shows them). Clients and tests compare these objects, so kedge stores the same shape.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

_NODE_INFO = (
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
)


def _conditions(status: Obj, times: tuple[str, ...]) -> None:
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict):
            for t in times:
                cond.setdefault(t, None)


def _container_state(state: Any) -> None:
    if not isinstance(state, dict):
        return
    if isinstance(state.get("running"), dict):
        state["running"].setdefault("startedAt", None)
    term = state.get("terminated")
    if isinstance(term, dict):
        term.setdefault("exitCode", 0)
        term.setdefault("startedAt", None)
        term.setdefault("finishedAt", None)


def typed_pod(pod: Obj) -> None:
    pod.setdefault("spec", {})
    status = pod.setdefault("status", {})
    if not isinstance(status, dict):
        return
    _conditions(status, ("lastProbeTime", "lastTransitionTime"))
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if not isinstance(cs, dict):
                continue
            cs.setdefault("name", "")
            for k in ("state", "lastState"):
                if not isinstance(cs.get(k), dict):
                    cs[k] = {}
                _container_state(cs[k])
            cs.setdefault("ready", False)
            cs.setdefault("restartCount", 0)
            cs.setdefault("image", "")
            cs.setdefault("imageID", "")


def typed_node(node: Obj) -> None:
    node.setdefault("spec", {})
    status = node.setdefault("status", {})
    if not isinstance(status, dict):
        return
    _conditions(status, ("lastHeartbeatTime", "lastTransitionTime"))
    endpoints = status.setdefault("daemonEndpoints", {})
    if isinstance(endpoints, dict):
        kubelet = endpoints.setdefault("kubeletEndpoint", {})
        if isinstance(kubelet, dict):
            kubelet.setdefault("Port", 0)
    info = status.setdefault("nodeInfo", {})
    if isinstance(info, dict):
        for k in _NODE_INFO:
            info.setdefault(k, "")
