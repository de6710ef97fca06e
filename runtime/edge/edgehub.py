"""EdgeHub: the edge end of the channel (design.md §4) — dial, keep alive, reconnect forever, queue.

The edge dials ``wss://<cloud>/<projectID>/<node>/events`` with its node certificate (alone, see
dial.py) and the headers ``node_id``, ``project_id`` and ``ConnectionUse: msg`` (what edgecore sends;
cloudcore reads a session only for ``msg``) plus kedge's extras (``X-Kedge-Version``,
``X-Kedge-Cache-Epoch``; a KubeEdge cloudcore ignores them). A kedge cloud answers the upgrade with
``X-Kedge-Version``, which is how ``status()["peer_kind"]`` knows what it talks to.

Reconnects use ``backoff()`` (jittered, capped, restarted after a connection opened); errors are sorted
by ``classify`` (runtime/edge/dial.py, with the handshake itself) into retry / auth / fatal. An auth
failure (our certificate refused, the cloud's not trusted) is surfaced in ``status()`` and retried with
the same cap — a certificate may be renewed or the cloud fixed while we wait. While offline ``send``
writes to the durable ``Outbox``; on reconnect the outbox drains first, in order, and new messages queue
behind it.

A KubeEdge cloud that takes the session but answers none of our requests for ``answer_within``
seconds (what cloudcore does with a session it refused after the upgrade) does not count as
connected: the link is closed and redialled (answers.py, KubeEdge peers only), and
``status()["last_error"]`` says why until a request is answered.

Responses to our requests are resolved for ``request()`` and acknowledged with "OK" as edgecore does
(except a response that itself is "OK"). Everything else goes to ``on_message``, whose owner acks
after committing (``await hub.ack(msg)``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from runtime import __version__
from runtime.backoff import backoff
from runtime.config import KUBEEDGE_PROJECT_ID, EdgeHubSection
from runtime.edge.answers import AnswerWatch
from runtime.edge.dial import HDR_EPOCH, HDR_VERSION, ClientTLS, Failure, classify, client_ssl_context, dial
from runtime.edge.outbox import Outbox
from runtime.errors import AuthError, KedgeError, Unreachable
from runtime.logs import LogOnce
from runtime.protocol import (
    ACK_CONTENT,
    MAX_FRAME_BYTES,
    OP_ERROR,
    OP_RESPONSE,
    MalformedMessage,
    Message,
    ack,
    decode,
    encode,
    keepalive,
)
from runtime.protocol.resource import metric_labels

log = logging.getLogger("kedge.edgehub")

# classify and friends live in dial.py; importing them from here keeps working
__all__ = ["HDR_EPOCH", "HDR_VERSION", "EdgeHub", "Failure", "OnMessage", "classify", "client_ssl_context"]

OnMessage = Callable[[Message], Awaitable[None]]


class EdgeHub:
    """One node's link to the cloud. ``run(stop)`` owns the connection until ``stop`` is set."""

    def __init__(
        self,
        server: str,
        node: str,
        *,
        on_message: OnMessage,
        outbox_path: str | Path,
        ssl_context: ssl.SSLContext | ClientTLS | None = None,
        cert: str | None = None,
        key: str | None = None,
        ca: str | None = None,
        project_id: str = KUBEEDGE_PROJECT_ID,
        epoch: str = "",
        heartbeat: float = 15.0,
        dead_after: float | None = None,
        reconnect_cap: float = 30.0,
        reconnect_initial: float = 0.5,
        connect_timeout: float = 10.0,
        answer_within: float = 30.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        outbox_max_messages: int = 10_000,
        policy: Callable[[BaseException], Failure] = classify,
    ) -> None:
        if ssl_context is None:
            if not (cert and key and ca):
                raise ValueError("EdgeHub needs ssl_context or cert, key and ca paths")
            ssl_context = ClientTLS(cert, key, ca)
        self.url = f"wss://{server}/{project_id}/{node}/events"
        self.node, self.project_id, self.epoch = node, project_id, epoch
        self.ssl_context = ssl_context
        self.on_message = on_message
        self.heartbeat = heartbeat
        # A cut link only shows through silence, and the cloud never answers keepalives, so a
        # websocket ping (answered by kedge and by KubeEdge's gorilla alike) every 2 heartbeats tells
        # us the cloud is gone; `dead_after` seconds without its pong close the link.
        self.dead_after = dead_after if dead_after is not None else 2 * heartbeat
        self.reconnect_cap, self.reconnect_initial = reconnect_cap, reconnect_initial
        self.connect_timeout = connect_timeout
        self.answers = AnswerWatch(answer_within)
        self.max_frame_bytes = max_frame_bytes
        self.policy = policy
        self.outbox = Outbox(outbox_path, max_messages=outbox_max_messages)
        self._ws: ClientConnection | None = None
        self._backlog = True  # until the outbox was seen empty on a live link
        self._send_lock = asyncio.Lock()
        self._waiters: dict[str, asyncio.Future[Message]] = {}
        self._kick = asyncio.Event()
        self._up = asyncio.Event()
        self._close_task: asyncio.Future[None] | None = None
        self._since: float | None = None
        self._last_contact: float | None = None
        self._backoff: float | None = None
        self._peer_kind = ""
        self._peer_version = ""
        self._reconnects = -1  # the first connection is not a reconnect
        # (direction, operation, type) → messages, the labels bounded (protocol.metric_labels)
        self.message_counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._last_error = ""
        self._auth_error = ""
        # The last refusal as an AuthError (exit code 5 for a CLI that surfaces it); None once connected.
        self.auth_failure: AuthError | None = None
        self._malformed = 0
        self._log = LogOnce(logger=log)  # a failing handler: its traceback once a minute, then counted
        self._last_malformed_log = 0.0
        self.refused = 0  # requests the cloud answered 403 Forbidden

    @classmethod
    def from_config(
        cls, hub: EdgeHubSection, node: str, *, on_message: OnMessage, outbox_path: str | Path, **kw: Any
    ) -> EdgeHub:
        """Build from ``[hub]`` of edge.toml; ``kw`` adds ssl_context or cert/key/ca, epoch, overrides."""
        opts: dict[str, Any] = dict(
            project_id=hub.project_id,
            heartbeat=hub.heartbeat_seconds,
            reconnect_cap=hub.reconnect_cap_seconds,
            connect_timeout=hub.connect_timeout_seconds,
            max_frame_bytes=hub.max_frame_bytes,
        )
        opts.update(kw)
        return cls(hub.server, node, on_message=on_message, outbox_path=outbox_path, **opts)

    # --- public API ---

    def headers(self) -> dict[str, str]:
        h = {
            "node_id": self.node,
            "project_id": self.project_id,
            "ConnectionUse": "msg",  # cloudcore starts its reader for "msg" sessions only
            HDR_VERSION: __version__,
        }
        if self.epoch:
            h[HDR_EPOCH] = self.epoch
        return h

    def reload_identity(self) -> None:
        """A renewed node certificate was written: the next handshake presents it."""
        if isinstance(self.ssl_context, ClientTLS):
            self.ssl_context.reload()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "since": self._since,
            "last_contact": self._last_contact,
            "backoff": self._backoff,
            "peer_kind": self._peer_kind,
            "peer_version": self._peer_version,
            "reconnects": max(self._reconnects, 0),
            "last_error": self._last_error,
            "auth_error": self._auth_error,
            "outbox": len(self.outbox),
            "outbox_dropped": dict(self.outbox.dropped),
            "malformed": self._malformed,
            "unanswered_drops": self.answers.drops,
        }

    def _count(self, direction: str, msg: Message) -> None:
        self.message_counts[(direction, *metric_labels(msg.operation, msg.resource))] += 1

    async def wait_connected(self, wait: float | None = None) -> None:
        """Return once a session is up; TimeoutError after ``wait`` seconds (None: no limit)."""
        await asyncio.wait_for(self._up.wait(), wait)

    async def send(self, msg: Message) -> None:
        """Write now when online and nothing is queued; otherwise append to the durable outbox."""
        async with self._send_lock:
            ws = self._ws
            if ws is not None and not self._backlog:
                try:
                    await ws.send(encode(msg))
                    self._count("sent", msg)
                    return
                except ConnectionClosed:
                    pass
            await self.outbox.put(msg)
            self._backlog = True
            self._kick.set()

    async def try_send(self, msg: Message, *, kedge_only: bool = False) -> bool:
        """Write now when online with nothing queued before it; otherwise drop (False). For what is
        stale by the time a link comes back (resource usage), never the outbox. ``kedge_only``: a
        kedge extension, dropped on a KubeEdge peer."""
        async with self._send_lock:
            ws = self._ws
            if ws is None or self._backlog or (kedge_only and self._peer_kind != "kedge"):
                return False
            try:
                await ws.send(encode(msg))
            except ConnectionClosed:
                return False
            self._count("sent", msg)
            return True

    async def ack(self, msg: Message) -> None:
        """Acknowledge a cloud→edge message after committing it (the cloud resends until then)."""
        await self.send(ack(msg))

    async def request(self, msg: Message, timeout: float = 30.0) -> Message:  # noqa: ASYNC109
        """Send and wait for the response whose parent_msg_id is ``msg.msg_id``; Unreachable on timeout."""
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters[msg.msg_id] = fut
        self.answers.asked()
        try:
            await self.send(msg)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise Unreachable(
                f"cloud {self.url}: no response to {msg.operation} {msg.resource} within {timeout:g}s",
                hint="check `kedge status` for the cloud link",
            ) from None
        finally:
            self._waiters.pop(msg.msg_id, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, reconnect with backoff — until ``stop`` is set. Raises only FATAL errors."""
        await self.outbox.open()
        self._backlog = len(self.outbox) > 0
        delays = backoff(self.reconnect_initial, cap=self.reconnect_cap)
        try:
            while not stop.is_set():
                try:
                    async with dial(
                        self.url,
                        self.ssl_context,
                        self.headers(),
                        max_frame_bytes=self.max_frame_bytes,
                        heartbeat=self.heartbeat,
                        dead_after=self.dead_after,
                        connect_timeout=self.connect_timeout,
                    ) as ws:
                        delays = backoff(self.reconnect_initial, cap=self.reconnect_cap)
                        await self._serve(ws, stop)
                except Exception as exc:
                    kind = self.policy(exc)
                    if kind is Failure.FATAL:
                        raise
                    self._note_failure(exc, kind)
                if stop.is_set():
                    break
                self._backoff = next(delays)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._backoff)
        finally:
            self._backoff = None
            await self.outbox.close()

    # --- internals ---

    def _note_failure(self, exc: BaseException, kind: Failure) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if kind is Failure.AUTH:
            self._auth_error = text
            self.auth_failure = AuthError(
                f"cloud {self.url} refused node {self.node}'s certificate or is not trusted: {text}",
                hint="check the node certificate's expiry and CA (`kedge status`); re-join if it expired",
            )
        if text != self._last_error:  # say it once, then the status counts reconnects
            log.warning("cloud %s: %s (%s; retrying with backoff)", self.url, text, kind.value)
        self._last_error = text

    async def _serve(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        resp_headers = ws.response.headers if ws.response is not None else {}
        self._peer_version = resp_headers.get(HDR_VERSION, "")
        self._peer_kind = "kedge" if self._peer_version else "kubeedge"
        self._ws = ws
        self._up.set()
        self._since = self._last_contact = time.time()
        self._backoff = None
        self._reconnects += 1
        self._auth_error = ""
        if not self.answers.drops:  # that reason stays until the cloud answers again
            self._last_error = ""
        self.auth_failure = None
        self.answers.connected(pending=bool(self._waiters))
        log.info("connected to %s (%s peer)", self.url, self._peer_kind)
        tasks = [
            asyncio.create_task(self._keepalive(ws), name="edgehub-keepalive"),
            asyncio.create_task(self._drain(ws), name="edgehub-drain"),
            asyncio.create_task(self._close_on(stop, ws), name="edgehub-stop"),
        ]
        if self._peer_kind == "kubeedge":  # a kedge cloud refuses at the upgrade, never by silence
            watch = self.answers.watch(ws, self.url, self._dropped)
            tasks.append(asyncio.create_task(watch, name="edgehub-answers"))
        for t in tasks:
            t.add_done_callback(functools.partial(self._helper_done, ws=ws))
        self._kick.set()
        try:
            await self._reader(ws)
        finally:
            self._ws = None
            self._since = time.time()  # `since` is when the link last changed: now, the disconnect
            self._up.clear()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            log.info("disconnected from %s (%s)", self.url, ws.close_reason or ws.close_code)

    def _helper_done(self, task: asyncio.Task[None], ws: ClientConnection) -> None:
        """A helper that fails (e.g. the outbox's disk) must not leave a half-working link: log it and
        close the link, so the next session starts clean."""
        if task.cancelled() or isinstance(task.exception(), ConnectionClosed | None):
            return
        log.error("edgehub %s failed: %r; reconnecting", task.get_name(), task.exception())
        self._close_task = asyncio.ensure_future(ws.close(1011, "edge internal error"))

    async def _close_on(self, stop: asyncio.Event, ws: ClientConnection) -> None:
        await stop.wait()
        await ws.close()

    def _dropped(self, reason: str) -> None:
        self._last_error = reason

    async def _keepalive(self, ws: ClientConnection) -> None:
        while True:
            ka = keepalive()
            await ws.send(encode(ka))
            self._count("sent", ka)
            await asyncio.sleep(self.heartbeat)

    async def _drain(self, ws: ClientConnection) -> None:
        """Send the outbox in order; new messages queue behind it until it is empty."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            while True:
                batch = await self.outbox.peek(100)
                if not batch:
                    async with self._send_lock:
                        if len(self.outbox) == 0:
                            self._backlog = False
                            break
                    continue
                for _, m in batch:
                    await ws.send(encode(m))
                    self._count("sent", m)
                await self.outbox.delete([rid for rid, _ in batch])

    def _note_refusal(self, msg: Message) -> None:
        """A 403 answer (the cloud's node authorizer refused a request): said once a minute, counted."""
        err = msg.content.get("Err") if isinstance(msg.content, dict) else None
        status = err.get("ErrStatus") if isinstance(err, dict) else None
        if isinstance(status, dict) and status.get("code") == 403:
            self.refused += 1
            self._log.warning("forbidden", f"cloud refused {msg.resource} (403): {status.get('message')}")

    async def _reader(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                self._last_contact = time.time()
                try:
                    msg = decode(data, limit=self.max_frame_bytes)
                except MalformedMessage as exc:
                    self._malformed += 1
                    if time.monotonic() - self._last_malformed_log > 60:
                        self._last_malformed_log = time.monotonic()
                        log.warning("cloud sent a malformed frame (%d so far): %s", self._malformed, exc)
                    continue
                self._count("received", msg)
                if msg.parent_msg_id and msg.operation in (OP_RESPONSE, OP_ERROR):
                    if self.answers.answered():
                        self._last_error = ""
                    fut = self._waiters.get(msg.parent_msg_id)
                    self._note_refusal(msg)
                    if msg.content != ACK_CONTENT:
                        await self.send(ack(msg))  # edgecore acks every response (recorded)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                        continue
                    if msg.content == ACK_CONTENT and fut is None:
                        continue
                try:
                    await self.on_message(msg)
                except KedgeError as exc:  # said in words (a full disk): no traceback
                    hint = f" ({exc.hint})" if exc.hint else ""
                    self._log.warning(f"handler:{type(exc).__name__}", f"edgehub: {exc}{hint}")
                except Exception:
                    self._log.exception(
                        f"handler:{msg.operation}",
                        f"edgehub handler failed for {msg.operation} {msg.resource}",
                    )
        except ConnectionClosed:
            pass
