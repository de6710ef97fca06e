"""CloudHub: the cloud end of the edge channel (design.md §4 "Channel", "Reliable delivery").

A websockets server over mutual TLS. The node of a session is the client certificate's CN
(``system:node:<node>``); the URL path and the ``node_id`` header must agree with it or the upgrade is
refused with 403 before any message flows. One session per node: a newer one replaces the older. Each
node has a ``Downlink`` (runtime/protocol/delivery.py) that outlives its sessions, so unacked messages
survive a reconnect. One housekeeping task — not one timer per edge — drops silent sessions and
resends overdue messages, which keeps 10,000 idle edges cheap. A node's Downlink goes with its Node
(``forget``, on the Node's deletion), an offline one holding nothing is dropped by housekeeping, and
an offline one holds at most ``max_pending`` messages (the oldest give way; the resync on connect
sends what the edge lacks, from the ack state).

Resources: inside the cloud they carry ``node/<node>/``; the hub adds the prefix on the way up (unless
``prefix_upstream=False``) and strips any prefix on the way down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from prometheus_client import CollectorRegistry
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from runtime import __version__
from runtime.cloud.hub.events import EdgeEvents, OnSession
from runtime.cloud.hub.handshake import (
    CLOSE_REPLACED,
    CLOSE_SILENT,
    CLOSE_STUCK,
    HDR_VERSION,
    QuietProbes,
    Refusal,
    raise_nofile_limit,
    session_info,
    vet_stream,
    vet_upgrade,
)
from runtime.cloud.hub.metrics import HubMetrics
from runtime.cloud.hub.session import LogOnce, OnAck, OnMessage, Session, SessionInfo
from runtime.config import CloudHubSection
from runtime.listen import CLOUD_HINT, binding
from runtime.protocol import (
    MAX_FRAME_BYTES,
    Message,
    add_node_prefix,
    failure_status,
    object_result,
    response_to,
    strip_node_prefix,
)
from runtime.protocol.delivery import MAX_RESENDS, RESEND_AFTER, Downlink

log = logging.getLogger("kedge.cloudhub")

__all__ = ["CloudHub"]


class CloudHub(EdgeEvents):
    """The websocket server every edge dials. See the module docstring for the rules it enforces."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext,
        on_message: OnMessage | None = None,
        host: str = "0.0.0.0",
        port: int = 10000,
        on_connect: OnSession | None = None,
        on_disconnect: OnSession | None = None,
        on_ack: OnAck | None = None,
        registry: CollectorRegistry | None = None,
        keepalive_timeout: float = 30.0,
        resend_after: float = RESEND_AFTER,
        max_resends: int = MAX_RESENDS,
        rate: float = 30.0,
        burst: int = 60,
        queue_size: int = 256,
        send_timeout: float = 10.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        prefix_upstream: bool = True,
        tick: float | None = None,
        max_pending: int = 10_000,
    ) -> None:
        self.host, self.port, self.ssl_context = host, port, ssl_context
        super().__init__(LogOnce(logger=log))
        self.subscribe(
            on_message=on_message, on_connect=on_connect, on_disconnect=on_disconnect, on_ack=on_ack
        )
        self.keepalive_timeout = keepalive_timeout
        self.resend_after, self.max_resends = resend_after, max_resends
        self.rate, self.burst = rate, burst
        self.queue_size, self.send_timeout = queue_size, send_timeout
        self.max_frame_bytes = max_frame_bytes
        self.prefix_upstream = prefix_upstream
        self.max_pending = max_pending
        self.close_wait = min(5.0, keepalive_timeout)
        self.tick = tick if tick is not None else max(0.01, min(1.0, resend_after / 4, keepalive_timeout / 4))
        self.metrics = HubMetrics(registry)
        self.metrics.bind(self.pending_acks, lambda: sum(s.queue_depth for s in self._sessions.values()))
        self._sessions: dict[str, Session] = {}
        self._links: dict[str, Downlink] = {}
        # (node, project) from process_request to the handler; weak so failed handshakes leave nothing
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: Server | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self.admit: Callable[[], Awaitable[object]] | None = None  # awaited before a session starts
        # stream tunnels (runtime/cloud/streams): does (node, sid) wait for its edge, and who takes it
        self.stream_expected: Callable[[str, str], bool] | None = None
        self.on_stream: Callable[[str, str, ServerConnection], Awaitable[None]] | None = None
        self._stream_handshakes: weakref.WeakKeyDictionary[ServerConnection, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def from_config(
        cls,
        hub: CloudHubSection,
        *,
        ssl_context: ssl.SSLContext,
        on_message: OnMessage | None = None,
        **kw: Any,
    ) -> CloudHub:
        """Build from ``[hub]`` of cloud.toml; ``kw`` adds callbacks, registry or overrides."""
        opts: dict[str, Any] = dict(
            host=hub.bind,
            port=hub.websocket_port,
            keepalive_timeout=hub.keepalive_timeout_seconds,
            max_frame_bytes=hub.max_frame_bytes,
            rate=hub.rate_limit_qps,
            burst=hub.rate_limit_burst,
            resend_after=hub.resend_seconds,
        )
        opts.update(kw)
        return cls(ssl_context=ssl_context, on_message=on_message, **opts)

    # --- lifecycle ---

    async def start(self) -> None:
        raise_nofile_limit()
        with binding("kedge cloud hub", self.host, self.port, hint=CLOUD_HINT):
            self._server = await self._serve()
        self._housekeeper = asyncio.create_task(self._housekeeping(), name="cloudhub-housekeeping")
        log.info("cloudhub listening on %s:%d", self.host, self.bound_port)

    async def _serve(self) -> Server:
        return await serve(
            self._handler,
            self.host,
            self.port,
            ssl=self.ssl_context,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=self.max_frame_bytes,
            compression=None,
            ping_interval=None,
            max_queue=4,
            server_header=f"kedge/{__version__}",
            logger=QuietProbes(log, {}),
            close_timeout=self.close_wait,
        )

    async def stop(self) -> None:
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeper
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def bound_port(self) -> int:
        assert self._server is not None, "start() first"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    # --- API ---

    async def send(
        self, node: str, msg: Message, *, reliable_key: str | None = None, wait: float | None = None
    ) -> bool:
        """Send to one edge. With ``reliable_key`` (use the object UID) the message is kept until acked
        — also across disconnects — and True is returned. Otherwise it is queued on the live session,
        waiting up to ``wait`` seconds (default ``send_timeout``) for room; False when the edge is offline or
        too slow (the stuck session is then closed; its edge reconnects and resyncs)."""
        owner, rest = strip_node_prefix(msg.resource)
        if owner is not None:
            msg.resource = rest
        session = self._sessions.get(node)
        if reliable_key is not None:
            link = self._link(node)
            link.send(msg, reliable_key, time.monotonic())
            if session is None and link.pending_count > self.max_pending:  # the resync on connect
                # sends it what is dropped here, because the edge never acked it
                oldest = [k for k, _ in link.pending()[: link.pending_count - self.max_pending]]
                link.forget(oldest)
                self.metrics.send_dropped.inc(len(oldest))
                self._log.warning(
                    f"full:{node}",
                    f"edge {node}: more than {self.max_pending} unacked messages, the oldest dropped "
                    "(its next connect resyncs)",
                    time.monotonic(),
                )
            if session is not None:
                session.wake()
            return True
        if session is None:
            self.metrics.send_dropped.inc()
            return False
        if await session.put(msg, self.send_timeout if wait is None else wait):
            return True
        self.metrics.send_dropped.inc()
        log.warning("edge %s: send queue full for %.1fs, closing its session", node, self.send_timeout)
        if self._retire(session, "stuck"):
            self._spawn(self._tell_disconnect(session.info))
        self._spawn(session.close(CLOSE_STUCK, "edge too slow", self.close_wait))
        return False

    def sessions(self) -> list[SessionInfo]:
        out = []
        for node, s in sorted(self._sessions.items()):
            s.info.pending_acks = self._links[node].pending_count if node in self._links else 0
            out.append(s.info)
        return out

    def connected(self, node: str) -> bool:
        return node in self._sessions

    def pending_acks(self, node: str | None = None) -> int:
        if node is not None:
            return self._links[node].pending_count if node in self._links else 0
        return sum(link.pending_count for link in self._links.values())

    def tracked(self) -> list[str]:
        """Nodes whose delivery state the hub holds (connected, or offline with unacked messages)."""
        return sorted(self._links)

    def forget(self, node: str) -> None:
        """The node is gone (its Node deleted): drop its pending messages and delivery state."""
        link = self._links.get(node)
        if link is not None:
            link.forget()
            if node not in self._sessions:
                del self._links[node]

    def downlink(self, node: str) -> Downlink:
        """The node's reliable-delivery state (e.g. ``forget()`` on a new cache epoch)."""
        return self._link(node)

    # --- internals ---

    def _link(self, node: str) -> Downlink:
        link = self._links.get(node)
        if link is None:
            link = self._links[node] = Downlink(
                self.resend_after, self.max_resends, online=node in self._sessions
            )
        return link

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refuse(self, ws: ServerConnection, status: HTTPStatus, reason: str, text: str) -> Response:
        self.metrics.refused.labels(reason).inc()
        self._log.warning(
            f"refused:{reason}",
            f"cloudhub: refused upgrade from {ws.remote_address}: {text}",
            time.monotonic(),
        )
        return ws.respond(status, text + "\n")

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        stream = vet_stream(ws, request)
        if isinstance(stream, Refusal):
            return self._refuse(ws, stream.status, stream.reason, stream.text)
        if stream is not None:
            if self.stream_expected is None or not self.stream_expected(*stream):
                text = f"no stream session {stream[1]} waits for node {stream[0]}"
                return self._refuse(ws, HTTPStatus.FORBIDDEN, "stream", text)
            self._stream_handshakes[ws] = stream
            return None
        found = vet_upgrade(ws, request)
        if isinstance(found, Refusal):
            return self._refuse(ws, found.status, found.reason, found.text)
        self._handshakes[ws] = found
        return None

    def _process_response(self, ws: ServerConnection, request: Request, response: Response) -> None:
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers[HDR_VERSION] = __version__
        else:
            self._handshakes.pop(ws, None)

    async def _handler(self, ws: ServerConnection) -> None:
        stream = self._stream_handshakes.pop(ws, None)
        if stream is not None and self.on_stream is not None:
            await self.on_stream(stream[0], stream[1], ws)
            return
        found = self._handshakes.pop(ws, None)
        if found is None:  # cannot happen: process_request accepted it; refuse rather than guess
            await ws.close(1011, "handshake state lost")
            return
        node, project = found
        if self.admit is not None:  # Lease renewals before new sessions (runtime/cloud/lease_gate.py)
            await self.admit()
        info = session_info(ws, node, project)
        link = self._link(node)
        session = Session(
            ws,
            info,
            link,
            self.metrics,
            self._log,
            rate=self.rate,
            burst=self.burst,
            queue_size=self.queue_size,
            max_frame_bytes=self.max_frame_bytes,
            close_wait=self.close_wait,
        )
        old = self._sessions.get(node)
        self._sessions[node] = session
        if old is not None:
            old.active = False
            self.metrics.closed.labels("replaced").inc()
            log.info(
                "edge %s: new session from %s replaces the one from %s", node, info.remote, old.info.remote
            )
            self._spawn(old.close(CLOSE_REPLACED, "replaced by a newer session", self.close_wait))
            del old  # not held (with its connection) for the life of the new session
        link.reconnected(time.monotonic())
        self.metrics.opened.inc()
        self.metrics.connected.set(len(self._sessions))
        log.info(
            "edge %s connected from %s (%s %s, epoch %s)",
            node,
            info.remote,
            info.peer_kind,
            info.version or "-",
            info.epoch or "-",
        )
        await self._tell_connect(info)
        try:
            await session.run(self._upstream, self._tell_ack)
        finally:
            if self._retire(session, "ended"):
                log.info("edge %s disconnected (%s)", node, ws.close_reason or ws.close_code)
                await self._tell_disconnect(info)

    def _retire(self, session: Session, reason: str) -> bool:
        """Take the node offline if ``session`` is still its current one; True if it was."""
        node = session.info.node
        session.active = False
        if self._sessions.get(node) is not session:
            return False
        del self._sessions[node]
        session.link.disconnected()
        self.metrics.connected.set(len(self._sessions))
        self.metrics.closed.labels(reason).inc()
        return True

    async def _upstream(self, node: str, msg: Message) -> None:
        owner, rest = strip_node_prefix(msg.resource)
        if owner is not None and owner != node:
            await self._refuse_other_node(node, owner, msg)
            return
        if self.prefix_upstream and msg.resource:
            msg.resource = add_node_prefix(node, rest)  # an edge naming itself is taken as it means
        await self._tell_message(node, msg)

    async def _refuse_other_node(self, node: str, owner: str, msg: Message) -> None:
        """A message naming ``node/<other>/…``: answered 403 in KubeEdge's wrapped form (as the node
        authorizer refuses), logged once a minute per edge, counted — never handed to a controller."""
        self.metrics.refused_messages.inc()
        text = f'node "{node}" cannot access resources of node "{owner}": {msg.operation} {msg.resource}'
        self._log.warning(f"other-node:{node}", f"edge {node}: refused (403): {text}")
        await self.send(node, response_to(msg, object_result(None, failure_status(403, "Forbidden", text))))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            for node, s in list(self._sessions.items()):
                if s.active and not s.busy and now - s.last_contact > self.keepalive_timeout:
                    log.warning("edge %s: silent for %.0fs, dropping its session", node, now - s.last_contact)
                    self._retire(s, "silent")
                    self._spawn(s.close(CLOSE_SILENT, "keepalive timeout", self.close_wait))
                    self._spawn(self._tell_disconnect(s.info))
            for node, link in list(self._links.items()):
                if not link.pending_count and node not in self._sessions:
                    del self._links[node]  # nothing to keep; a later send or connect makes a new one
                    continue
                deadline = link.next_deadline()
                if deadline is not None and deadline <= now:
                    n = link.tick(now)
                    if n:
                        self.metrics.resends.inc(n)
                        s2 = self._sessions.get(node)
                        if s2 is not None:
                            s2.wake()
