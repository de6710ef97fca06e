"""Tunnels: one websocket per stream session, dialled by the edge on the hub port (protocol/tunnel.py).

    tunnel = await tunnels.open(node, OpenRequest(...))   # NotConnected / TooManyStreams
    await tunnel.send(STDIN, b"...");  channel, data = await tunnel.recv()   # None once closed
    await tunnel.close()

``open`` checks the node's link is up and is a kedge edge, sends the open message over it and waits
up to ``open_timeout`` seconds for the edge to dial ``/<project>/<node>/streams/<sid>`` (the hub refuses
that upgrade unless this node has that session pending: ``expected``). At most ``max_per_node`` sessions
per node at once. When the node's link goes down, its tunnels are closed (``on_disconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from runtime.cloud.hub.session import SessionInfo
from runtime.errors import Refused, Unreachable
from runtime.protocol import Message
from runtime.protocol.tunnel import OpenRequest, TunnelError, frame, new_sid, open_message, split

log = logging.getLogger("kedge.cloudstream")


class NotConnected(Unreachable):
    """The pod's node has no link to this cloud (or did not open the tunnel in time): HTTP 503."""


class TooManyStreams(Refused):
    """The node already runs ``max_per_node`` sessions: HTTP 429."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=429)


class EdgeLinks(Protocol):
    """What the tunnels need from the CloudHub."""

    def connected(self, node: str) -> bool: ...

    def sessions(self) -> list[SessionInfo]: ...

    async def send(
        self, node: str, msg: Message, *, reliable_key: str | None = None, wait: float | None = None
    ) -> bool: ...


class Tunnel:
    """One session's websocket from the edge."""

    def __init__(self, node: str, sid: str, ws: ServerConnection) -> None:
        self.node, self.sid, self.ws = node, sid, ws
        self.done = asyncio.Event()
        self.on_close: Callable[[], None] | None = None  # the session's slot back, once

    async def send(self, channel: int, data: bytes) -> None:
        await self.ws.send(frame(channel, data))

    async def recv(self) -> tuple[int, bytes] | None:
        """The next frame, None once the edge closed the tunnel (or sent garbage)."""
        try:
            return split(await self.ws.recv())
        except (ConnectionClosed, TunnelError):
            return None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2.0)
        self.ws.transport.abort()
        self.done.set()
        release, self.on_close = self.on_close, None
        if release is not None:
            release()


class Tunnels:
    def __init__(self, links: EdgeLinks, *, max_per_node: int = 32, open_timeout: float = 5.0,
                 registry: CollectorRegistry | None = None) -> None:  # fmt: skip
        self.links = links
        self.max_per_node, self.open_timeout = max_per_node, open_timeout
        registry = registry if registry is not None else CollectorRegistry()
        Gauge("kedge_cloud_streams_active", "stream sessions open (tunnels to edges, or waiting for one)",
              registry=registry).set_function(self.active)  # fmt: skip
        self.opened_total = Counter("kedge_cloud_streams_opened", "stream sessions opened, by kind", ["kind"],
                                    registry=registry)  # fmt: skip
        self.refused_total = Counter("kedge_cloud_streams_refused", "stream sessions refused, by reason",
                                     ["reason"], registry=registry)  # fmt: skip
        self._pending: dict[str, tuple[str, asyncio.Future[Tunnel]]] = {}
        self._open: dict[str, set[Tunnel]] = defaultdict(set)
        self._counts: dict[str, int] = defaultdict(int)
        self.opened = 0

    def active(self, node: str | None = None) -> int:
        return self._counts.get(node, 0) if node is not None else sum(self._counts.values())

    def expected(self, node: str, sid: str) -> bool:
        pending = self._pending.get(sid)
        return pending is not None and pending[0] == node and not pending[1].done()

    async def accept(self, node: str, sid: str, ws: ServerConnection) -> None:
        """The hub's handler for a tunnel upgrade: hand the websocket to ``open`` and hold it open
        until the session ends (the hub closes the connection when this returns)."""
        pending = self._pending.get(sid)
        if pending is None or pending[0] != node or pending[1].done():
            await ws.close(1008, "no such stream session")
            return
        tunnel = Tunnel(node, sid, ws)
        pending[1].set_result(tunnel)
        self._open[node].add(tunnel)
        try:
            await tunnel.done.wait()
        finally:
            self._open[node].discard(tunnel)
            if not self._open[node]:
                del self._open[node]

    async def open(self, node: str, req: OpenRequest) -> Tunnel:
        if not self.links.connected(node):
            self.refused_total.labels("not_connected").inc()
            raise NotConnected(f"edge node {node} is not connected")
        kind = next((s.peer_kind for s in self.links.sessions() if s.node == node), "")
        if kind != "kedge":
            self.refused_total.labels("edgecore").inc()
            raise NotConnected(f"edge node {node} runs KubeEdge's edgecore: streams need a kedge edge")
        if self._counts[node] >= self.max_per_node:
            self.refused_total.labels("too_many").inc()
            raise TooManyStreams(f"edge node {node} already serves {self.max_per_node} streams")
        req.sid = new_sid()
        fut: asyncio.Future[Tunnel] = asyncio.get_running_loop().create_future()
        self._pending[req.sid] = (node, fut)
        self._counts[node] += 1
        ok = False
        try:
            if not await self.links.send(node, open_message(req), wait=self.open_timeout):
                raise NotConnected(f"edge node {node} is not connected")
            try:
                tunnel = await asyncio.wait_for(fut, self.open_timeout)
            except TimeoutError:
                self.refused_total.labels("timeout").inc()
                raise NotConnected(
                    f"edge node {node} did not open the stream within {self.open_timeout:g}s"
                ) from None
            ok = True
            self.opened += 1
            self.opened_total.labels(req.kind).inc()
            tunnel.on_close = lambda: self._release_count(node)
            return tunnel
        finally:
            del self._pending[req.sid]
            if not ok:
                self._release_count(node)
                if fut.done() and not fut.cancelled():
                    await fut.result().close()

    def _release_count(self, node: str) -> None:
        self._counts[node] -= 1
        if self._counts[node] <= 0:
            del self._counts[node]

    async def on_disconnect(self, info: SessionInfo) -> None:
        """The node's link went down: its sessions end (the clients see the stream close)."""
        tunnels = list(self._open.get(info.node, ()))
        if tunnels:
            log.info("edge %s disconnected: closing its %d stream(s)", info.node, len(tunnels))
        await asyncio.gather(*(t.close() for t in tunnels), return_exceptions=True)
