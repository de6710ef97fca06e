"""The server side of exec/attach: an upgraded connection (SPDY or WebSocket) becomes a `CommandSession`.

Facts (apimachinery util/remotecommand, client-go tools/remotecommand, kubelet cri/streaming):
- SPDY: the client opens one stream per channel, header `streamType` = error | stdin | stdout | stderr |
  resize (resize only with a TTY, v3+), error first; each waits for its SYN_REPLY. Stdout/stderr/error
  are written by the server; stdin and resize by the client (stdin ends with its FIN).
- WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`): every binary message starts with a channel byte:
  0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds 255 = close, payload = the channel closed.
- Query: kubectl sends stdin/stdout/stderr/tty to the API server, which sends input/output/error/tty
  (and `command`, repeated) to the kubelet; both spellings are understood.
- Resize: a stream of JSON objects `{"Width": w, "Height": h}`.
- Error channel, v4/v5: a metav1.Status JSON — `Success`, or `Failure` with reason `NonZeroExitCode`
  and a cause `{"reason": "ExitCode", "message": "<code>"}` that kubectl turns into its exit code;
  v2/v3: the error text itself (nothing on success).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from runtime.streams.connection import SpdyConnection, SpdyStream, StreamReset
from runtime.streams.transport import StreamTransport, WebSocketChannel
from runtime.streams.upgrade import (
    StreamRequest,
    accept_spdy,
    accept_websocket,
    refuse,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SPDY_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io")
WEBSOCKET_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
INBOX_CHUNKS = 64  # unread stdin chunks (or sizes) before the client is slowed down


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


# the query names of each flag: kubectl → API server (PodExecOptions), API server → kubelet (streamParams)
FLAG_NAMES = {"stdin": ("stdin", "input"), "stdout": ("stdout", "output"), "stderr": ("stderr", "error"),
              "tty": ("tty",)}  # fmt: skip


def wants(request: StreamRequest, flag: str) -> bool:
    return any(request.flag(name) for name in FLAG_NAMES[flag])


def wire_exit_code(code: int) -> int:
    """client-go parses the ExitCode cause as an unsigned 8-bit number: a process killed by signal N
    (Python's -N) reads as 128+N, as a shell reports it; larger codes saturate at 255."""
    return 128 - code if code < 0 else min(code, 255)


def status_for(exit_code: int | None, message: str | None) -> dict[str, object]:
    """The v4+ error-channel Status for how the command ended."""
    if exit_code is not None:
        exit_code = wire_exit_code(exit_code)
    if not exit_code and not message:
        return {"metadata": {}, "status": "Success"}
    out: dict[str, object] = {"metadata": {}, "status": "Failure"}
    if exit_code:
        out["message"] = message or f"command terminated with non-zero exit code: exit status {exit_code}"
        out["reason"] = "NonZeroExitCode"
        out["details"] = {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]}
    else:
        out["message"] = message
        out["reason"] = "InternalError"
    return out


class _Inbox(Generic[T]):
    """A bounded queue that ends: `put` waits while `limit` items are unread (so a client that sends
    faster than the command reads is slowed down through the stream windows and TCP), `get` returns
    None once `end` was called and the items before it are taken."""

    def __init__(self, limit: int, *, keep_latest: bool = False) -> None:
        self._items: deque[T] = deque(maxlen=limit if keep_latest else None)
        self._limit, self._ended = limit, False
        self._cond = asyncio.Condition()

    async def put(self, item: T) -> None:
        """Waits while full — unless `keep_latest`: then the oldest item is dropped (terminal sizes:
        only the last one matters, and a caller that ignores them must not hold up stdin)."""
        async with self._cond:
            if self._items.maxlen is None:
                await self._cond.wait_for(lambda: len(self._items) < self._limit or self._ended)
            if not self._ended:
                self._items.append(item)
                self._cond.notify_all()

    async def end(self) -> None:
        async with self._cond:
            self._ended = True
            self._cond.notify_all()

    async def get(self) -> T | None:
        async with self._cond:
            await self._cond.wait_for(lambda: bool(self._items) or self._ended)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item


class _Channels:
    """What a transport provides to CommandSession (SPDY streams or WebSocket channels)."""

    async def write(self, channel: int, data: bytes) -> None:
        raise NotImplementedError

    async def finish(self, error_payload: bytes) -> None:
        raise NotImplementedError


class CommandSession:
    """One exec/attach session as the terminating side sees it.

    `command`/`container` come from the query; `stdin`/`stdout`/`stderr`/`tty` are what the client asked
    for. Iterate `stdin_chunks()` (ends when the client closes stdin or goes away) and `resizes()`; write
    with `write_stdout`/`write_stderr`; end with `finish(exit_code, message)` — exactly once."""

    def __init__(self, request: StreamRequest, protocol: str, channels: _Channels) -> None:
        self.request, self.protocol, self._channels = request, protocol, channels
        self.command: list[str] = request.query.get("command", [])
        self.container: str = (request.query.get("container") or [""])[-1]
        self.stdin, self.stdout, self.tty = (
            wants(request, "stdin"),
            wants(request, "stdout"),
            wants(request, "tty"),
        )
        self.stderr = wants(request, "stderr") and not self.tty
        self._stdin: _Inbox[bytes] = _Inbox(INBOX_CHUNKS)
        self._resize: _Inbox[TerminalSize] = _Inbox(8, keep_latest=True)
        self._finished = False
        self._tasks: list[asyncio.Task[None]] = []  # the input pumps, kept referenced
        self.client_gone = asyncio.Event()

    async def stdin_chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._stdin.get()) is not None:
            yield chunk

    async def resizes(self) -> AsyncIterator[TerminalSize]:
        while (size := await self._resize.get()) is not None:
            yield size

    async def write_stdout(self, data: bytes) -> None:
        """Raises StreamReset once the client is gone (stop the command then: see `client_gone`)."""
        await self._write(STDOUT, data)

    async def write_stderr(self, data: bytes) -> None:
        """With a TTY there is no stderr channel: the bytes go to stdout, as a terminal shows them."""
        await self._write(STDERR if self.stderr else STDOUT, data)

    async def _write(self, channel: int, data: bytes) -> None:
        if self.client_gone.is_set() or self._finished:
            raise StreamReset("the client went away" if self.client_gone.is_set() else "session finished")
        if data:
            try:
                await self._channels.write(channel, data)
            except (ConnectionError, OSError) as exc:
                raise StreamReset(f"the client went away: {exc}") from exc

    async def finish(self, exit_code: int | None = 0, message: str | None = None) -> None:
        """Send the error-channel result (a Status on v4/v5, text on v2/v3) and close the connection."""
        if self._finished:
            return
        self._finished = True
        if self.protocol.startswith(("v4.", "v5.")):
            payload = json.dumps(status_for(exit_code, message)).encode()
        else:
            text = message or (
                f"command terminated with non-zero exit code: {exit_code}" if exit_code else ""
            )
            payload = text.encode()
        with contextlib.suppress(ConnectionError, OSError, StreamReset):
            await self._channels.finish(payload)
        await self._end_inputs()

    async def _end_inputs(self) -> None:
        await self._stdin.end()
        await self._resize.end()

    async def _gone(self) -> None:  # the transport ended: the client closed or lost the connection
        self.client_gone.set()
        await self._end_inputs()


class _ResizeParser:
    """A JSON object stream (`{"Width":..,"Height":..}` one after another, split anyhow). Bytes that
    cannot start an object, and an object that cannot be decoded once another begins after it, are
    skipped to the next `{`, so one malformed size does not swallow the sizes after it (WebSocket
    channel 4 carries one object per message); an object that never completes is dropped past 4 KiB."""

    def __init__(self) -> None:
        self._buf = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[TerminalSize]:
        self._buf += data.decode("utf-8", "replace")
        out = []
        while True:
            self._buf = self._buf.lstrip()
            if not self._buf:
                break
            if not self._buf.startswith("{"):
                start = self._buf.find("{")
                self._buf = self._buf[start:] if start >= 0 else ""
                continue
            try:
                obj, end = self._decoder.raw_decode(self._buf)
            except json.JSONDecodeError:
                following = self._buf.find("{", 1)
                if following >= 0:  # sizes hold no nested object: this one is malformed, not unfinished
                    self._buf = self._buf[following:]
                    continue
                if len(self._buf) > 4096:  # garbage, not an unfinished object
                    self._buf = ""
                break
            self._buf = self._buf[end:]
            if isinstance(obj, dict) and _dimension(obj.get("Width")) and _dimension(obj.get("Height")):
                out.append(TerminalSize(obj["Width"], obj["Height"]))
        return out


def _dimension(value: object) -> bool:
    """A terminal dimension as client-go sends it (uint16)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF


# ---------------------------------------------------------------- SPDY


class _SpdyChannels(_Channels):
    def __init__(self, conn: SpdyConnection, streams: dict[str, SpdyStream]) -> None:
        self.conn, self.streams = conn, streams

    async def write(self, channel: int, data: bytes) -> None:
        name = {STDOUT: "stdout", STDERR: "stderr"}[channel]
        if (stream := self.streams.get(name)) is not None:
            await stream.write(data)

    async def finish(self, error_payload: bytes) -> None:
        for name in ("stdout", "stderr"):
            if (stream := self.streams.get(name)) is not None:
                with contextlib.suppress(ConnectionError, StreamReset):
                    await stream.close()
        if (error := self.streams.get("error")) is not None:
            if error_payload:
                await error.write(error_payload)
            await error.close()
        await self.conn.close()


async def _spdy_session(
    request: StreamRequest, protocol: str, conn: SpdyConnection, stream_wait: float
) -> CommandSession | None:
    expected = {"error"} | {n for n in ("stdin", "stdout") if wants(request, n)}
    if wants(request, "stderr") and not wants(request, "tty"):
        expected.add("stderr")
    if wants(request, "tty") and protocol != "v2.channel.k8s.io":
        expected.add("resize")
    streams: dict[str, SpdyStream] = {}
    try:
        async with asyncio.timeout(stream_wait):
            while not expected <= streams.keys():
                stream = await conn.accept()
                if stream is None:
                    return None
                kind = stream.header("streamtype") or ""
                if kind not in expected or kind in streams:  # a channel the request did not ask for
                    await stream.reset()
                    continue
                await stream.reply()
                streams[kind] = stream
    except TimeoutError:
        log.info("exec: streams %s not all opened in %ss", sorted(expected - streams.keys()), stream_wait)
        await conn.close()
        return None
    session = CommandSession(request, protocol, _SpdyChannels(conn, streams))
    session._tasks.append(asyncio.create_task(_pump_spdy(session, conn, streams), name="exec-spdy-inputs"))
    return session


async def _pump_spdy(session: CommandSession, conn: SpdyConnection, streams: dict[str, SpdyStream]) -> None:
    async def stdin(stream: SpdyStream) -> None:
        with contextlib.suppress(StreamReset, ConnectionError):
            while chunk := await stream.read():
                await session._stdin.put(chunk)
        await session._stdin.end()

    async def resize(stream: SpdyStream) -> None:
        parser = _ResizeParser()
        with contextlib.suppress(StreamReset, ConnectionError):
            while chunk := await stream.read():
                for size in parser.feed(chunk):
                    await session._resize.put(size)
        await session._resize.end()

    tasks = [asyncio.create_task(stdin(streams["stdin"]))] if "stdin" in streams else []
    if "resize" in streams:
        tasks.append(asyncio.create_task(resize(streams["resize"])))
    await conn.wait_closed()
    await session._gone()
    for task in tasks:
        task.cancel()


# ---------------------------------------------------------------- WebSocket


class _WsChannels(_Channels):
    def __init__(self, channel: WebSocketChannel) -> None:
        self.channel = channel
        self._lock = asyncio.Lock()

    async def write(self, channel: int, data: bytes) -> None:
        async with self._lock:
            self.channel.send(bytes((channel,)) + data)
            await self.channel.drain()

    async def finish(self, error_payload: bytes) -> None:
        async with self._lock:
            if error_payload:
                self.channel.send(bytes((ERROR,)) + error_payload)
            await self.channel.close(1000)


async def _pump_ws(session: CommandSession, channel: WebSocketChannel) -> None:
    parser = _ResizeParser()
    stdin_open = True
    while (message := await channel.read_message()) is not None:
        if not message:
            continue
        kind, payload = message[0], message[1:]
        if kind == STDIN and stdin_open and payload and session.stdin:
            await session._stdin.put(payload)
        elif kind == RESIZE:
            for size in parser.feed(payload):
                await session._resize.put(size)
        elif kind == CLOSE and payload[:1] == bytes((STDIN,)) and stdin_open:
            stdin_open = False
            await session._stdin.end()
    await session._gone()
    await channel.close()  # the peer closed: the server closes the TCP connection (RFC 6455 7.1.1)


# ---------------------------------------------------------------- entry point


async def accept_command(
    request: StreamRequest,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    websocket: bool = True,
    stream_wait: float = 30.0,
) -> CommandSession | None:
    """Upgrade an exec/attach request and wait for its channels. None: refused or the client went away
    (the answer is written). `websocket=False` refuses WebSocket upgrades (kubectl then uses SPDY)."""
    if not any(wants(request, flag) for flag in ("stdin", "stdout", "stderr")):
        await refuse(writer, 400, "you must specify at least 1 of stdin, stdout, stderr")
        return None
    if request.websocket:
        channel = await accept_websocket(request, reader, writer, WEBSOCKET_PROTOCOLS, allowed=websocket)
        if channel is None:
            return None
        session = CommandSession(request, channel.subprotocol, _WsChannels(channel))
        session._tasks.append(asyncio.create_task(_pump_ws(session, channel), name="exec-ws-inputs"))
        return session
    protocol = await accept_spdy(request, writer, SPDY_PROTOCOLS)
    if protocol is None:
        return None
    conn = SpdyConnection(StreamTransport(reader, writer, request.rest), server=True)
    return await _spdy_session(request, protocol, conn, stream_wait)
