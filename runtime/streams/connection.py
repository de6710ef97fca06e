"""An asyncio SPDY/3.1 connection over a byte transport: streams the peer opens (with their headers),
read/write/half-close/reset, PING answered, GOAWAY on close (lingering for the peer), a GOAWAY received
closes once the peer's streams are done, at most `max_streams` open streams.

Flow control, as peers really behave: moby/spdystream (kubectl, client-go, the kubelet) neither sends
WINDOW_UPDATE nor honours one — it relies on TCP. So our send windows are enforced once the peer shows
it speaks flow control (a SETTINGS with INITIAL_WINDOW_SIZE or any WINDOW_UPDATE), or from the start with
`flow_control=True` (our own client); a peer that announces is answered with our own `window` (1 MiB:
64 KiB windows cost a round trip per 32 KiB) and only then is data past our window a FLOW_CONTROL_ERROR.
WINDOW_UPDATEs go out as the application reads, and the read loop stops reading the transport while the
connection holds `buffer_limit` unread bytes (never less than the window: a compliant peer never stalls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from runtime.streams import spdy
from runtime.streams.spdy import Headers, SpdyError
from runtime.streams.transport import Transport

log = logging.getLogger(__name__)
CHUNK = 32 * 1024  # DATA frame payload we send at most


class StreamReset(ConnectionResetError):
    """The stream was reset, by the peer or because the connection went away (a ConnectionError, so
    code that handles a lost connection handles this too)."""


class SpdyStream:
    """One SPDY stream. `headers` are those of its SYN_STREAM (names lower case)."""

    def __init__(self, conn: SpdyConnection, stream_id: int, headers: Headers) -> None:
        self.conn, self.id, self.headers = conn, stream_id, headers
        self.send_window = spdy.FlowWindow(conn.peer_initial_window, conn.peer_initial_window)
        self.recv_window = spdy.FlowWindow(conn.recv_initial_window, conn.recv_initial_window)
        self.local_closed = False  # we sent FIN
        self.remote_closed = False  # peer sent FIN
        self.reset_status: int | None = None
        self.replied = asyncio.Event()  # SYN_REPLY, RST_STREAM or the connection's end
        self.accepted = False  # a SYN_REPLY came
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)

    async def reply(self, headers: Headers = ()) -> None:
        """SYN_REPLY: spdystream drops DATA on a stream it has no reply for, so reply before writing."""
        await self.conn.send(spdy.SynReply(self.id, headers))

    async def read(self) -> bytes:
        """The next chunk; b"" once the peer half-closed; StreamReset if it was reset."""
        while not self._chunks:
            if self.remote_closed:  # a clean end stays clean when the connection goes away after it
                return b""
            if self.reset_status is not None:
                raise StreamReset(f"stream {self.id} reset ({self.reset_status})")
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self._buffered -= len(data)
        self.conn.consumed(self, len(data))
        return data

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.reset_status is not None or self.local_closed:
                raise StreamReset(f"write on closed stream {self.id}")
            n = self.conn.sendable(self, min(len(view), CHUNK))
            if n <= 0:
                self._writable.clear()
                await self._writable.wait()
                continue
            self.send_window.spend(n)
            self.conn.session_send.spend(n)
            await self.conn.send(spdy.DataFrame(self.id, bytes(view[:n])))
            view = view[n:]

    async def close(self) -> None:
        """Half-close: FIN, nothing more will be written."""
        if not self.local_closed and self.reset_status is None:
            self.local_closed = True
            await self.conn.send(spdy.DataFrame(self.id, b"", fin=True))
            self.conn.forget_if_done(self)

    async def reset(self, status: int = spdy.CANCEL) -> None:
        if self.reset_status is None:
            self._on_reset(status)
            await self.conn.send(spdy.RstStream(self.id, status))

    # called by the connection's read loop
    def _on_data(self, data: bytes, fin: bool) -> None:
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
        if fin:
            self.remote_closed = True
        self._readable.set()

    def _on_reset(self, status: int) -> None:
        self.reset_status = status
        if self._chunks:  # unread data of a reset stream is dropped
            self.conn.consumed_session(self._buffered)
            self._chunks.clear()
            self._buffered = 0
        self._readable.set()
        self._writable.set()
        self.conn.forget(self)


class SpdyConnection:
    """`server=True` for the side that accepts streams (even ids for any it opens itself).
    `flow_control=True` honours the peer's windows from the start, as SPDY/3.1 says (our own client,
    which also announces it); the default honours them once the peer shows it speaks flow control."""

    def __init__(
        self,
        transport: Transport,
        *,
        server: bool,
        flow_control: bool = False,
        window: int = 1 << 20,
        buffer_limit: int = 1 << 20,
        max_streams: int = 1000,
    ) -> None:
        self.transport, self.server, self.flow_control = transport, server, flow_control
        self.max_streams = max_streams  # open at once; more are refused (REFUSED_STREAM)
        self.window = window  # what we let the peer send per stream and per session, once announced
        self.recv_initial_window = spdy.DEFAULT_WINDOW  # until announce_flow_control
        self.announced = False
        self.buffered = 0  # unread bytes in all streams
        self.buffer_limit = max(buffer_limit, window, spdy.DEFAULT_WINDOW)
        self.peer_initial_window = spdy.DEFAULT_WINDOW
        self.peer_flow_control = False  # see the module docstring
        self.session_send = spdy.FlowWindow()
        self.session_recv = spdy.FlowWindow()
        self.streams: dict[int, SpdyStream] = {}
        self.closed = asyncio.Event()
        self.error: SpdyError | None = None
        self._parser = spdy.FrameParser()
        self._writer = spdy.FrameWriter()
        self._write_lock = asyncio.Lock()
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._next_id = 2 if server else 1
        self._last_peer_id = 0
        self._goaway_sent = False
        self._draining = False
        self._goaway_received = False
        self._closer: asyncio.Task[None] | None = None
        self._pending_sends: set[asyncio.Task[None]] = set()
        self._space = asyncio.Event()
        self._task = asyncio.create_task(self._read_loop(), name="spdy-read")

    # ---------------------------------------------------------------- public
    async def accept(self) -> SpdyStream | None:
        """The next stream the peer opened; None once the connection is closed."""
        if self.closed.is_set() and self._incoming.empty():
            return None
        stream = await self._incoming.get()
        if stream is None:
            self._incoming.put_nowait(None)  # every later accept() sees the end too
        return stream

    async def open_stream(self, headers: Headers, *, wait_reply: bool = True) -> SpdyStream:
        stream_id, self._next_id = self._next_id, self._next_id + 2
        stream = SpdyStream(self, stream_id, headers)
        self.streams[stream_id] = stream
        await self.send(spdy.SynStream(stream_id, headers))
        if wait_reply:
            await self._wait(stream.replied)
            if not stream.accepted:
                raise StreamReset(f"stream {stream_id} refused ({stream.reset_status})")
        return stream

    async def announce_flow_control(self) -> None:
        """Tell the peer we speak flow control and let it send `window` bytes per stream and session
        (64 KiB windows cost a round trip per 32 KiB). Our own client does this first; the server answers
        in kind when a peer announces (spdystream never does, and ignores it)."""
        if self.announced:
            return
        self.announced = True
        self.recv_initial_window = self.window
        for stream in self.streams.values():  # the peer applies the new initial window to open streams too
            stream.recv_window.resize(self.window)
        delta = self.window - self.session_recv.size
        self.session_recv.size, self.session_recv.available = self.window, self.session_recv.available + delta
        await self.send(spdy.Settings(((spdy.SETTINGS_INITIAL_WINDOW_SIZE, self.window),)))
        if delta > 0:
            await self.send(spdy.WindowUpdate(0, delta))

    async def ping(self, ping_id: int | None = None) -> None:
        await self.send(spdy.Ping(ping_id if ping_id is not None else (2 if self.server else 1)))

    async def close(self, status: int = spdy.GOAWAY_OK, *, linger: float = 2.0) -> None:
        """GOAWAY, then wait up to `linger` seconds for the peer to close (closing a socket with unread
        input makes the kernel send RST, which can destroy our last frames in flight), then close the
        transport; streams not finished by then end (reset)."""
        if not self._goaway_sent and not self.closed.is_set():
            self._goaway_sent = True
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                await self.send(spdy.GoAway(self._last_peer_id, status))
                self._draining = True  # what still arrives is read and dropped, never waited for
                self._space.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(linger):
                        await self.closed.wait()
        await self._shutdown()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def wait_closed(self) -> None:
        await self.closed.wait()

    # ---------------------------------------------------------------- used by streams
    async def send(self, frame: spdy.Frame) -> None:
        if self.closed.is_set():
            raise ConnectionResetError("SPDY connection closed")
        async with self._write_lock:  # header compression: encode in write order
            self.transport.write(self._writer.encode(frame))
            await self.transport.drain()

    def sendable(self, stream: SpdyStream, want: int) -> int:
        if not (self.flow_control or self.peer_flow_control):
            return want
        return min(want, stream.send_window.available, self.session_send.available)

    def consumed(self, stream: SpdyStream, n: int) -> None:
        """`n` bytes of `stream` were read: credit the windows (WINDOW_UPDATE when due), free buffer."""
        if (d := stream.recv_window.consume(n)) and not stream.remote_closed:
            self._send_soon(spdy.WindowUpdate(stream.id, d))
        self.consumed_session(n)
        self.forget_if_done(stream)

    def consumed_session(self, n: int) -> None:
        self.buffered -= n
        if self.buffered < self.buffer_limit:
            self._space.set()
        if d := self.session_recv.consume(n):
            self._send_soon(spdy.WindowUpdate(0, d))

    def _send_soon(self, frame: spdy.Frame) -> None:
        if not self.closed.is_set():
            task = asyncio.create_task(self._send_quietly(frame))
            self._pending_sends.add(task)
            task.add_done_callback(self._pending_sends.discard)

    def forget(self, stream: SpdyStream) -> None:
        self.streams.pop(stream.id, None)
        self._end_after_goaway()

    def _end_after_goaway(self) -> None:
        """The peer said GOAWAY: once its last stream is done, close (as spdystream does)."""
        if self._goaway_received and not self.streams and self._closer is None and not self.closed.is_set():
            self._closer = asyncio.create_task(self._shutdown(), name="spdy-close")

    def forget_if_done(self, stream: SpdyStream) -> None:
        if stream.local_closed and stream.remote_closed and not stream._chunks:
            self.forget(stream)

    # ---------------------------------------------------------------- internals
    async def _send_quietly(self, frame: spdy.Frame) -> None:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            await self.send(frame)

    async def _wait(self, event: asyncio.Event) -> None:
        closed = asyncio.ensure_future(self.closed.wait())
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({closed, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            waiter.cancel()
        if not event.is_set():
            raise ConnectionResetError("SPDY connection closed")

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.transport.read()
                if not data:
                    self._parser.eof()
                    break
                self._parser.feed(data)
                for frame in self._parser.frames():
                    await self._handle(frame)
        except SpdyError as exc:
            self.error = exc
            log.info("SPDY connection error: %s", exc)
            if not self._goaway_sent:
                self._goaway_sent = True
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    await self.send(spdy.GoAway(self._last_peer_id, spdy.GOAWAY_PROTOCOL_ERROR))
        except (ConnectionError, OSError) as exc:
            log.info("SPDY transport error: %s", exc)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for stream in list(self.streams.values()):
            stream._on_reset(spdy.CANCEL)
            stream.replied.set()
        self._incoming.put_nowait(None)
        self._space.set()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            await self.transport.close()

    async def _handle(self, frame: spdy.Frame) -> None:  # noqa: C901 - one case per frame type
        try:
            if isinstance(frame, spdy.DataFrame):
                await self._on_data(frame)
            elif isinstance(frame, spdy.SynStream):
                await self._on_syn_stream(frame)
            elif isinstance(frame, spdy.SynReply | spdy.HeadersFrame):
                if (stream := self.streams.get(frame.stream_id)) is not None:
                    stream.accepted = True
                    stream.replied.set()
                    if frame.fin:
                        stream._on_data(b"", True)
            elif isinstance(frame, spdy.RstStream):
                if (stream := self.streams.get(frame.stream_id)) is not None:
                    stream._on_reset(frame.status)
                    stream.replied.set()
            elif isinstance(frame, spdy.Settings):
                self._on_settings(frame)
                if self.peer_flow_control:
                    await self.announce_flow_control()  # answer in kind: windows both ways
            elif isinstance(frame, spdy.Ping):
                if frame.ping_id % 2 != (0 if self.server else 1):  # the peer's ping: echo it
                    await self.send(frame)
            elif isinstance(frame, spdy.GoAway):
                self._goaway_sent = True  # the peer leaves: no GOAWAY back, no new streams
                self._goaway_received = True
                self._end_after_goaway()
            elif isinstance(frame, spdy.WindowUpdate):
                self.peer_flow_control = True
                window = (
                    self.session_send
                    if frame.stream_id == 0
                    else getattr(self.streams.get(frame.stream_id), "send_window", None)
                )
                if window is not None:
                    window.grow(frame.delta, frame.stream_id)
                    self._wake_writers()
        except SpdyError as exc:
            if not exc.stream_id:
                raise
            if (stream := self.streams.get(exc.stream_id)) is not None:
                stream._on_reset(exc.status)
            await self.send(spdy.RstStream(exc.stream_id, exc.status))

    def _on_settings(self, frame: spdy.Settings) -> None:
        for key, value in frame.values:
            if key == spdy.SETTINGS_INITIAL_WINDOW_SIZE:
                if not 0 < value <= spdy.MAX_WINDOW:
                    raise SpdyError(f"initial window {value} out of range")
                self.peer_flow_control = True
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window.resize(value)
                self._wake_writers()

    def _wake_writers(self) -> None:
        for stream in self.streams.values():
            stream._writable.set()

    async def _on_syn_stream(self, frame: spdy.SynStream) -> None:
        own_parity = 0 if self.server else 1
        if frame.stream_id % 2 == own_parity or frame.stream_id <= self._last_peer_id:
            raise SpdyError(f"SYN_STREAM with bad id {frame.stream_id}")
        self._last_peer_id = frame.stream_id
        if self._goaway_sent or len(self.streams) >= self.max_streams:
            await self.send(spdy.RstStream(frame.stream_id, spdy.REFUSED_STREAM))
            return
        stream = SpdyStream(self, frame.stream_id, frame.headers)
        stream.replied.set()
        self.streams[frame.stream_id] = stream
        if frame.fin:
            stream.remote_closed = True
        if frame.unidirectional:
            stream.local_closed = True
        self._incoming.put_nowait(stream)

    async def _on_data(self, frame: spdy.DataFrame) -> None:
        stream = self.streams.get(frame.stream_id)
        n = len(frame.data)
        self.session_recv.receive(n, strict=False)  # see the module docstring
        if stream is None or stream.remote_closed or self._draining:
            if stream is None and frame.stream_id > max(self._last_peer_id, self._next_id):
                raise SpdyError(f"DATA on unknown stream {frame.stream_id}")
            self.buffered += n
            self.consumed_session(n)
            return  # late data of a stream we closed or reset: dropped (spdystream does the same)
        stream.recv_window.receive(n, frame.stream_id, strict=self.peer_flow_control)
        stream._on_data(frame.data, frame.fin)
        self.buffered += n
        while self.buffered >= self.buffer_limit and not self.closed.is_set():
            self._space.clear()  # backpressure: stop reading the transport until the reader catches up
            await self._space.wait()
        self.forget_if_done(stream)
