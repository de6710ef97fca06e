"""The server side of port-forward: an upgraded connection becomes a `PortForwardSession` that yields
one `PortConnection` (a duplex byte stream) per forwarded client connection.

Facts (client-go tools/portforward, kubelet cri/streaming/portforward): the stream protocol is
`portforward.k8s.io` over SPDY/3.1, or the same SPDY inside binary WebSocket messages when kubectl
upgrades to the WebSocket subprotocol `SPDY/3.1+portforward.k8s.io`. For each local connection the
client opens two streams with headers `streamType` (error, then data), `port` and `requestID` (the
pair's key); it half-closes the error stream at once and reads it to the end: text written there is
reported as "an error occurred forwarding <port> -> <port>: <text>", so the server ends both streams
when it is done with a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from runtime.streams.connection import SpdyConnection, SpdyStream, StreamReset
from runtime.streams.transport import StreamTransport, Transport, WebSocketTransport
from runtime.streams.upgrade import StreamRequest, accept_spdy, accept_websocket

log = logging.getLogger(__name__)

SPDY_PROTOCOLS = ("portforward.k8s.io",)
WEBSOCKET_PROTOCOLS = ("SPDY/3.1+portforward.k8s.io",)
PAIR_TIMEOUT = 30.0  # how long a half-opened pair waits for its other stream


class PortConnection:
    """One forwarded connection: `read()` (b"" when the client closed its side), `write`, `close()`
    (both streams end), `fail(message)` (the message on the error stream, then close)."""

    def __init__(self, port: int, request_id: str, data: SpdyStream, error: SpdyStream) -> None:
        self.port, self.request_id = port, request_id
        self._data, self._error = data, error

    async def read(self) -> bytes:
        try:
            return await self._data.read()
        except StreamReset:
            return b""

    async def write(self, data: bytes) -> None:
        await self._data.write(data)

    async def close(self) -> None:
        for stream in (self._data, self._error):
            with contextlib.suppress(ConnectionError, StreamReset):
                await stream.close()

    async def fail(self, message: str) -> None:
        with contextlib.suppress(ConnectionError, StreamReset):
            await self._error.write(message.encode())
        await self.close()


async def _reset_quietly(stream: SpdyStream) -> None:
    with contextlib.suppress(ConnectionError):  # the connection may be gone by then
        await stream.reset()


class PortForwardSession:
    """Iterate `connections()`; each yields as soon as its error and data streams are both open. The
    iteration ends when the client closes the session; `close()` ends it from our side."""

    def __init__(self, request: StreamRequest, protocol: str, conn: SpdyConnection) -> None:
        self.request, self.protocol, self.conn = request, protocol, conn
        self._expiring: set[asyncio.Task[None]] = set()
        self.pair_timeout = PAIR_TIMEOUT
        self.ports = [
            int(p) for v in request.query.get("port", []) for p in v.split(",") if p.strip().isdigit()
        ]

    async def connections(self) -> AsyncIterator[PortConnection]:
        pending: dict[str, dict[str, SpdyStream]] = {}
        while (stream := await self.conn.accept()) is not None:
            pair = await self._pair(stream, pending)
            if pair is not None:
                yield pair

    async def _pair(
        self, stream: SpdyStream, pending: dict[str, dict[str, SpdyStream]]
    ) -> PortConnection | None:
        kind, port_text = stream.header("streamtype"), stream.header("port") or ""
        request_id = stream.header("requestid") or str(stream.id)
        if kind not in ("error", "data"):
            await stream.reset()
            return None
        await stream.reply()
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            if kind == "error":
                with contextlib.suppress(ConnectionError, StreamReset):
                    await stream.write(f"invalid port header {port_text!r}".encode())
            if kind == "error":
                await stream.close()
            else:
                await stream.reset()
            return None
        streams = pending.setdefault(request_id, {})
        if kind in streams:
            await stream.reset()
            return None
        streams[kind] = stream
        if len(streams) == 1:
            asyncio.get_running_loop().call_later(
                self.pair_timeout, self._expire, pending, request_id, stream
            )
            return None
        del pending[request_id]
        return PortConnection(int(port_text), request_id, streams["data"], streams["error"])

    def _expire(self, pending: dict[str, dict[str, SpdyStream]], request_id: str, stream: SpdyStream) -> None:
        if pending.get(request_id, {}).get(str(stream.header("streamtype"))) is stream:
            del pending[request_id]
            log.info("port-forward: request %s never got its second stream", request_id)
            task = asyncio.get_running_loop().create_task(_reset_quietly(stream))
            self._expiring.add(task)
            task.add_done_callback(self._expiring.discard)

    async def close(self) -> None:
        await self.conn.close()


async def accept_portforward(
    request: StreamRequest,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    websocket: bool = True,
) -> PortForwardSession | None:
    """Upgrade a port-forward request (SPDY, or SPDY tunnelled in a WebSocket). None: refused (the
    answer is written). `websocket=False` refuses WebSocket upgrades (kubectl then uses SPDY)."""
    transport: Transport
    if request.websocket:
        channel = await accept_websocket(request, reader, writer, WEBSOCKET_PROTOCOLS, allowed=websocket)
        if channel is None:
            return None
        protocol, transport = channel.subprotocol, WebSocketTransport(channel)
    else:
        chosen = await accept_spdy(request, writer, SPDY_PROTOCOLS)
        if chosen is None:
            return None
        protocol, transport = chosen, StreamTransport(reader, writer, request.rest)
    return PortForwardSession(request, protocol, SpdyConnection(transport, server=True))
