"""Where a pod's logs, exec, attach and port-forward go: kube-apiserver's LogLocation/streamLocation.

The pod and container are checked first with kube-apiserver's words (a container name must be given
when the pod has several, it must be one of the pod's, a pod without a node has empty logs); then the
kubelet's address is the node's (preferred address types as kubeadm sets them: InternalIP first; port
``status.daemonEndpoints.kubeletEndpoint.Port``, 10250 when unset). A kedge cloud writes its stream
endpoint there for its edge nodes (``[kubelet_endpoint]``, runtime/cloud/tunnel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from runtime.apiserver.api import Api
from runtime.apiserver.http.status_errors import StatusError, bad_request, not_found

PREFERRED = ("InternalIP", "ExternalIP", "Hostname")  # kubeadm's --kubelet-preferred-address-types
KUBELET_PORT = 10250
LOG_FLAGS = ("follow", "previous", "timestamps")
LOG_NUMBERS = ("sinceSeconds", "tailLines", "limitBytes")


@dataclass
class Location:
    host: str
    port: int
    path: str  # with the query

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _names(items: list[dict[str, Any]]) -> str:
    return " ".join(str(c.get("name", "")) for c in items)


def _container(pod: dict[str, Any], name: str, given: str) -> str:
    spec = pod.get("spec") or {}
    containers, inits = spec.get("containers") or [], spec.get("initContainers") or []
    if not given:
        if len(containers) == 1:
            return str(containers[0]["name"])
        if not containers:
            raise bad_request(f"a container name must be specified for pod {name}")
        text = f"a container name must be specified for pod {name}, choose one of: [{_names(containers)}]"
        if inits:
            text += f" or one of the init containers: [{_names(inits)}]"
        raise bad_request(text)
    every = containers + inits + (spec.get("ephemeralContainers") or [])
    if not any(c.get("name") == given for c in every):
        raise bad_request(f"container {given} is not valid for pod {name}")
    return given


def kubelet_address(api: Api, node_name: str) -> tuple[str, int]:
    entry = api.store.get("/nodes", "", node_name)
    if entry is None:
        raise not_found("nodes", node_name)
    status = entry.obj().get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = next((addresses[t] for t in PREFERRED if addresses.get(t)), "")
    if not host:
        raise StatusError(500, "InternalError", f"no preferred addresses found; known addresses: {[]}")
    kubelet = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    return str(host), int(kubelet.get("Port") or KUBELET_PORT)


def _pod(api: Api, ns: str, name: str) -> dict[str, Any]:
    entry = api.store.get("/pods", ns, name)
    if entry is None:
        raise not_found("pods", name)
    return entry.obj()


def _log_query(query: dict[str, str]) -> str:
    """kubelet's query from the client's PodLogOptions, checked as kube-apiserver validates them."""
    out: dict[str, str] = {}
    for flag in LOG_FLAGS:
        if query.get(flag, "").lower() in ("true", "1"):
            out[flag] = "true"
    for num in LOG_NUMBERS:
        if query.get(num, "") != "":
            try:
                value = int(query[num])
            except ValueError:
                raise bad_request(f"{num}: Invalid value: {query[num]!r}") from None
            if value < (1 if num != "tailLines" else 0):
                raise bad_request(f"{num}: Invalid value: {value}: must be greater than 0")
            out[num] = str(value)
    if query.get("sinceTime"):
        out["sinceTime"] = query["sinceTime"]
    if "sinceSeconds" in out and "sinceTime" in out:
        raise bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
    return urlencode(out)


def log_location(api: Api, ns: str, name: str, query: dict[str, str]) -> Location | None:
    """None: the pod has no node yet (kube-apiserver answers empty logs)."""
    pod = _pod(api, ns, name)
    container = _container(pod, name, query.get("container", ""))
    node = (pod.get("spec") or {}).get("nodeName") or ""
    if not node:
        return None
    host, port = kubelet_address(api, node)
    path = f"/containerLogs/{quote(ns)}/{quote(name)}/{quote(container)}"
    params = _log_query(query)
    return Location(host, port, path + ("?" + params if params else ""))


def stream_location(
    api: Api, ns: str, name: str, sub: str, query: dict[str, str], raw_query: str
) -> Location:
    """exec, attach (a container) and portforward (the pod): the client's query is passed on."""
    pod = _pod(api, ns, name)
    node = (pod.get("spec") or {}).get("nodeName") or ""
    phase = (pod.get("status") or {}).get("phase")
    if sub != "portforward":
        container = _container(pod, name, query.get("container", ""))
        if phase in ("Succeeded", "Failed"):
            raise bad_request(f"cannot {sub} into a container in a completed pod; current phase is {phase}")
        path = f"/{sub}/{quote(ns)}/{quote(name)}/{quote(container)}"
    else:
        path = f"/portForward/{quote(ns)}/{quote(name)}"
    if not node:
        raise bad_request(f"pod {name} does not have a host assigned")
    host, port = kubelet_address(api, node)
    return Location(host, port, path + ("?" + raw_query if raw_query else ""))
