"""The kubelet endpoint the cloud writes into its edge nodes' status (``[kubelet_endpoint]``).

An API server sends ``pods/log|exec|attach|portforward`` to a node's kubelet: the node's InternalIP
and ``status.daemonEndpoints.kubeletEndpoint.Port``. An edge reports its own (nodeinfo.py: its IP and
edgecore's 10350); nothing listens there and the edge is behind NAT anyway. So the cloud overrides the
two fields, in one place — this module — on every write that carries them:

- the edge's registration (``insert node``) and status patches (``nodepatch``): ``rewrite_status``
  and ``rewrite_patch`` replace the two fields before the cloud writes them;
- a session opening here (``ensure``): the Node is patched when its endpoint is not this replica's
  (the node moved from another replica, or the configuration changed).

Modes: ``direct`` writes the stream endpoint's own address and port (an API server that reaches the
cloud directly: the embedded one, tests); ``dnat`` keeps the edge's address and writes this replica's
tunnel port (ports.py), which the DaemonSet of dnat.py sends to this replica's stream endpoint on the
control-plane hosts; ``none`` leaves what the edge reports.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import NODES

log = logging.getLogger("kedge.cloud.tunnel")
INTERNAL_IP = "InternalIP"


@dataclass(frozen=True)
class KubeletEndpoint:
    """What to write: ``address`` "" keeps the edge's InternalIP; ``port`` is always written."""

    address: str
    port: int


def apply(status: dict[str, Any], ep: KubeletEndpoint) -> None:
    """Set the kubelet port and (when ``ep.address``) the InternalIP of a NodeStatus, in place; the
    other addresses (Hostname, ExternalIP …) are kept as the edge reported them."""
    status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": ep.port}}
    if not ep.address:
        return
    rest = [a for a in status.get("addresses") or [] if a.get("type") != INTERNAL_IP]
    status["addresses"] = [{"type": INTERNAL_IP, "address": ep.address}, *rest]


def holds(status: dict[str, Any], ep: KubeletEndpoint) -> bool:
    """Whether a NodeStatus already points where ``ep`` says."""
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if port != ep.port:
        return False
    if not ep.address:
        return True
    internal = [a.get("address") for a in status.get("addresses") or [] if a.get("type") == INTERNAL_IP]
    return bool(internal) and internal[0] == ep.address


class KubeletEndpoints:
    """The override of one cloud replica. ``current`` is asked on every use: the stream endpoint's
    bound port and the tunnel port are known only once they are (None until then: nothing is
    overridden)."""

    def __init__(self, current: Callable[[], KubeletEndpoint | None]) -> None:
        self.current = current
        self.writes = 0

    def rewrite_status(self, node: dict[str, Any]) -> dict[str, Any]:
        """A Node the edge registers, with the endpoint overridden (a copy; the input is kept)."""
        ep = self.current()
        if ep is None:
            return node
        out = copy.deepcopy(node)
        apply(out.setdefault("status", {}), ep)
        return out

    def rewrite_patch(self, patch: dict[str, Any]) -> dict[str, Any]:
        """A status patch from the edge: the fields it sets among the two are overridden; a patch
        that sets neither passes unchanged (a heartbeat must not rewrite what another replica wrote)."""
        ep = self.current()
        status = patch.get("status") if isinstance(patch, dict) else None
        if ep is None or not isinstance(status, dict):
            return patch
        if "daemonEndpoints" not in status and "addresses" not in status:
            return patch
        out = copy.deepcopy(patch)
        apply(out["status"], ep)
        if ep.address:  # the InternalIP comes first now: the edge's element order no longer holds
            out["status"].pop("$setElementOrder/addresses", None)
        return out

    async def ensure(self, client: KubeClient, name: str, node: dict[str, Any] | None) -> bool:
        """Patch the Node's status when its endpoint is not this replica's; True when written."""
        ep = self.current()
        if ep is None:
            return False
        if node is None:
            try:
                node = await client.get(NODES, name)
            except KubeNotFound:
                return False  # not registered yet: its registration is rewritten
        status = node.get("status") or {}
        if holds(status, ep):
            return False
        want: dict[str, Any] = {"addresses": list(status.get("addresses") or [])}
        apply(want, ep)
        patch = {"status": {"daemonEndpoints": want["daemonEndpoints"]}}
        if ep.address:
            patch["status"]["addresses"] = want["addresses"]
        await client.patch(NODES, name, patch, type="strategic", subresource="status")
        self.writes += 1
        log.info("node %s: kubelet endpoint %s:%d", name, ep.address or "<edge's InternalIP>", ep.port)
        return True
