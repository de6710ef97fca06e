"""This replica's kubelet endpoint from ``[kubelet_endpoint]``: what it is, and the task that makes it so.

    endpoint_of(cfg, ...)  → KubeletEndpoints whose ``current()`` follows the mode:
        none    None (the edge's report stands)
        direct  (address or advertise[0] or 127.0.0.1, port or the stream endpoint's bound port)
        dnat    ("" = the edge's InternalIP, this replica's tunnel port once claimed)
    TunnelReplica.run      dnat: claim the tunnel port (ports.claim) once the stream port is known, then
                           re-assert the claim every minute (a deleted ConfigMap is written again; the
                           claims of replicas whose Lease expired are dropped)
    hold(...)              once ``current()`` is known: ``ensure`` every node connected here

The stream endpoint's port comes from ``stream_address()`` — the address it bound ("host:port", the
cloud's ``addresses["stream"]``) — unless ``port`` fixes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from runtime.cloud.tunnel import ports
from runtime.cloud.tunnel.endpoint import KubeletEndpoint, KubeletEndpoints
from runtime.config import KubeletEndpointSection
from runtime.kube.client import KubeClient

log = logging.getLogger("kedge.cloud.tunnel")
CLAIM_EVERY = 60.0


def bound_port(address: str | None) -> int:
    """The port of a bound "host:port" (0 when not bound yet)."""
    port = (address or "").rpartition(":")[2]
    return int(port) if port.isdigit() else 0


class TunnelReplica:
    """dnat mode: this replica's claim in the ``tunnelport`` ConfigMap."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        cfg: KubeletEndpointSection,
        advertise: list[str],
        stream_address: Callable[[], str | None],
    ) -> None:
        self.client, self.namespace, self.cfg = client, namespace, cfg
        self.address = cfg.tunnel_address or os.environ.get("POD_IP", "") or (advertise or ["127.0.0.1"])[0]
        self.stream_address = stream_address
        self.port = 0
        self.replica = ""
        self.live: Callable[[], set[str] | None] = lambda: None

    def identify(self, replica: str, live: Callable[[], set[str] | None]) -> None:
        """The replica's identity and its live peers (None until listed): stale claims get pruned."""
        self.replica, self.live = replica, live

    def stream_port(self) -> int:
        return self.cfg.port or bound_port(self.stream_address())

    async def run(self, every: float = CLAIM_EVERY) -> None:
        while True:
            stream = self.stream_port()
            if stream:
                try:
                    port = await ports.claim(
                        self.client,
                        self.namespace,
                        self.address,
                        stream,
                        self.cfg.tunnel_port_start,
                        replica=self.replica,
                        live=self.live(),
                    )
                    if port != self.port:
                        log.info("tunnel port %d claimed for %s (→ :%d)", port, self.address, stream)
                    self.port = port
                except Exception as exc:  # the API is away: the claim is retried, the cloud goes on
                    log.warning("tunnel port claim failed: %s", exc)
            await asyncio.sleep(every if self.port else 0.2)


def endpoint_of(
    cfg: KubeletEndpointSection,
    advertise: list[str],
    stream_address: Callable[[], str | None],
    tunnel: TunnelReplica | None,
) -> KubeletEndpoints:
    def current() -> KubeletEndpoint | None:
        if cfg.mode == "direct":
            port = cfg.port or bound_port(stream_address())
            address = cfg.address or (advertise or ["127.0.0.1"])[0]
            return KubeletEndpoint(address, port) if port else None
        if cfg.mode == "dnat" and tunnel is not None and tunnel.port:
            return KubeletEndpoint("", tunnel.port)
        return None

    return KubeletEndpoints(current)


async def hold(
    endpoints: KubeletEndpoints,
    client: KubeClient,
    connected: Callable[[], Iterable[str]],
    node: Callable[[str], dict[str, Any] | None],
    every: float = 0.2,
) -> None:
    """Once the endpoint is known (and whenever it changes): every node connected here gets it."""
    done: KubeletEndpoint | None = None
    while True:
        ep = endpoints.current()
        if ep is not None and ep != done:
            for name in list(connected()):
                try:
                    await endpoints.ensure(client, name, node(name))
                except Exception as exc:
                    log.warning("node %s: kubelet endpoint not written: %s", name, exc)
            done = ep
        await asyncio.sleep(every)
