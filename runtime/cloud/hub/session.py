"""One edge's websocket session inside the CloudHub: reader, writer, rate limit, malformed-frame policy.

Why a session object: each edge gets its own bounded send queue and its own writer task, so a slow edge
only ever blocks itself (design.md §3); its reader applies the edge's token bucket by sleeping, which
pushes back through TCP instead of dropping. Reliable messages are not queued here: the writer pulls
them from the node's ``Downlink``, which holds at most one per object, so resends never pile up.

Memory: one of these lives per connected edge (10,000 on a cloud), so the classes are slotted, the
idle writer waits on one bare future rather than an ``asyncio.Event`` (whose deque alone is ~600 bytes),
the send queue is a list and its "room again" event exists only while a sender waits, and neither loop
keeps the last message it handled alive (a sent Node update is ~12 KB of JSON) while idling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from runtime.cloud.hub.metrics import HubMetrics
from runtime.logs import LogOnce as LogOnce  # re-exported: controllers import it from here
from runtime.pace import TokenBucket
from runtime.protocol import OP_KEEPALIVE, MalformedMessage, Message, decode, encode
from runtime.protocol.delivery import Acked, Downlink, is_ack

log = logging.getLogger("kedge.cloudhub")

MALFORMED_IN_A_ROW = 3  # that many bad frames back to back close the session
CLOSE_POLICY = 1008  # websocket close code "policy violation"


@dataclass(slots=True)
class SessionInfo:
    """What ``sessions()`` and the callbacks report about one edge's session."""

    node: str
    project_id: str
    peer_kind: str  # "kedge" or "kubeedge"
    version: str  # kedge version the edge announced ("" for KubeEdge peers)
    epoch: str  # cache epoch the edge announced ("" for KubeEdge peers)
    remote: str
    since: float  # wall clock, seconds since the epoch
    last_contact: float = 0.0  # wall clock of the last frame received
    last_keepalive: float | None = None
    pending_acks: int = 0
    malformed: int = 0
    key_hash: str = ""  # sha256 of the client certificate's public key: the node's key (design.md §4)


OnMessage = Callable[[str, Message], Awaitable[None]]
OnAck = Callable[[str, Acked], Awaitable[None]]  # (node, what the edge committed)


class Session:
    """Reader + writer for one connection. ``run`` returns when the connection ends."""

    __slots__ = (
        "_bad_in_a_row",
        "_queue",
        "_space",
        "_waiter",
        "_woken",
        "active",
        "bucket",
        "busy",
        "close_wait",
        "info",
        "last_contact",
        "link",
        "logger",
        "max_frame_bytes",
        "metrics",
        "queue_size",
        "ws",
    )

    def __init__(
        self,
        ws: ServerConnection,
        info: SessionInfo,
        link: Downlink,
        metrics: HubMetrics,
        logger: LogOnce,
        *,
        rate: float,
        burst: int,
        queue_size: int,
        max_frame_bytes: int,
        close_wait: float = 5.0,
    ) -> None:
        self.ws = ws
        self.info = info
        self.link = link
        self.metrics = metrics
        self.logger = logger
        self.bucket = TokenBucket(rate, burst)
        self.queue_size = queue_size
        self.max_frame_bytes = max_frame_bytes
        self.close_wait = close_wait
        self.active = True  # False once replaced: the writer stops pulling from the shared Downlink
        self.busy = False  # inside on_message: not silent, just slow
        self.last_contact = time.monotonic()
        self._queue: list[Message] = []  # unreliable messages, at most queue_size
        self._space: asyncio.Event | None = None  # while a put() waits for room
        self._woken = True  # the Downlink may already hold output (reconnect)
        self._waiter: asyncio.Future[None] | None = None  # the idle writer's
        self._bad_in_a_row = 0

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def wake(self) -> None:
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def put(self, msg: Message, wait: float) -> bool:
        """Queue an unreliable message; wait up to ``wait`` seconds for room (backpressure). False if none."""
        deadline = time.monotonic() + wait
        while len(self._queue) >= self.queue_size:
            if self._space is None:
                self._space = asyncio.Event()
            self._space.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._space.wait(), remaining)
            except TimeoutError:
                return False
        self._queue.append(msg)
        self.wake()
        return True

    async def close(self, code: int, reason: str, wait: float = 5.0) -> None:
        """Close with ``code``; a peer that does not read (its close frame stuck behind a full socket
        buffer, where websockets' close() would wait forever) is cut off after ``wait`` seconds."""
        self.active = False
        try:
            await asyncio.wait_for(self.ws.close(code, reason), wait)
        except Exception:
            self.ws.transport.abort()

    async def run(self, on_message: OnMessage, on_ack: OnAck) -> None:
        writer = asyncio.create_task(self._writer(), name=f"cloudhub-writer-{self.info.node}")
        try:
            await self._reader(on_message, on_ack)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await writer

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._woken:
                self._waiter = loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            self._woken = False
            await self._send_all()

    async def _send_all(self) -> None:
        """Send what the Downlink and the queue hold; a call of its own so that its frame, which
        refers to the last message sent, is gone while the writer idles."""
        while True:
            batch = self.link.data_to_send() if self.active else []
            if not batch and self._queue:
                batch = [self._queue.pop(0)]
                if self._space is not None:
                    self._space.set()
            if not batch:
                return
            for m in batch:
                await self.ws.send(encode(m))
                self.metrics.sent(m.operation, m.resource)

    async def _reader(self, on_message: OnMessage, on_ack: OnAck) -> None:
        async for data in self.ws:
            if not await self._frame(data, on_message, on_ack):
                return
            del data  # not kept alive while waiting for the next frame

    async def _frame(self, data: str | bytes, on_message: OnMessage, on_ack: OnAck) -> bool:
        """Handle one frame from the edge; False when the session must end (malformed frames)."""
        node = self.info.node
        now = time.monotonic()
        wait = self.bucket.take(now)
        if wait > 0:
            self.metrics.throttled.inc()
            await asyncio.sleep(wait)
        self.last_contact = time.monotonic()
        self.info.last_contact = time.time()
        try:
            msg = decode(data, limit=self.max_frame_bytes)
        except MalformedMessage as exc:
            self.metrics.malformed.inc()
            self.info.malformed += 1
            self._bad_in_a_row += 1
            self.logger.warning(f"malformed:{node}", f"edge {node}: malformed frame: {exc}", now)
            if self._bad_in_a_row >= MALFORMED_IN_A_ROW:
                self.metrics.closed.labels("malformed").inc()
                log.warning(
                    "edge %s: %d malformed frames in a row, closing its session", node, self._bad_in_a_row
                )
                await self.close(CLOSE_POLICY, "malformed frames", self.close_wait)
                return False
            return True
        self._bad_in_a_row = 0
        self.metrics.received(msg.operation, msg.resource)
        if msg.operation == OP_KEEPALIVE:
            self.info.last_keepalive = self.info.last_contact
            return True
        if not msg.msg_id and not msg.operation and not msg.resource:
            return True  # edgecore's empty goodbye frame on SIGTERM (recorded)
        if is_ack(msg):
            for ev in self.link.receive(msg, now):
                await on_ack(node, ev)
            return True  # acks of responses are dropped here: nobody waits for them
        self.busy = True
        try:
            await on_message(node, msg)
        except Exception:
            self.logger.exception(
                f"handler:{msg.operation}", f"edge {node}: handler failed for {msg.operation} {msg.resource}"
            )
        finally:
            self.busy = False
        return True
