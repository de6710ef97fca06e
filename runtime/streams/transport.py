"""Byte pipes and message channels under the protocols: `Transport` is what SpdyConnection reads and
writes — TCP (`StreamTransport`) or SPDY tunnelled in binary WebSocket messages (`WebSocketTransport`,
kubectl's `SPDY/3.1+portforward.k8s.io`); `WebSocketChannel` is a server-side WebSocket after the
handshake (the `websockets` library's sans-I/O protocol object over asyncio streams).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol


class Transport(Protocol):
    """A reliable byte pipe: TCP (`StreamTransport`) or a WebSocket tunnel (`WebSocketTransport`)."""

    async def read(self) -> bytes: ...  # b"" at end of input

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    async def close(self) -> None: ...


class StreamTransport:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pending: bytes = b""
    ) -> None:
        self._reader, self._writer, self._pending = reader, writer, pending

    async def read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            return await self._reader.read(256 * 1024)
        except (ConnectionError, OSError):
            return b""

    def write(self, data: bytes) -> None:
        if not self._writer.is_closing():
            self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


class WebSocketChannel:
    """A server-side WebSocket after the handshake: binary messages in and out (sans-I/O protocol
    object from `websockets`; pings are answered by it). `read_message` returns None at close."""

    def __init__(
        self,
        proto: ServerProtocol,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rest: bytes,
        subprotocol: str,
    ) -> None:
        self.proto, self.reader, self.writer = proto, reader, writer
        self.subprotocol = subprotocol
        self._events: list[bytes | None] = []
        self.peer_closed = asyncio.Event()  # its close frame or EOF was read
        if rest:
            proto.receive_data(rest)
            self._collect()

    def _collect(self) -> None:
        for frame in self.proto.events_received():
            if not isinstance(frame, Frame):
                continue
            if frame.opcode in (Opcode.BINARY, Opcode.TEXT):
                self._events.append(bytes(frame.data))
            elif frame.opcode is Opcode.CLOSE:
                self._events.append(None)
        self._flush()

    def _flush(self) -> None:
        out = self.proto.data_to_send()
        if out and not self.writer.is_closing():
            self.writer.write(b"".join(out))

    async def read_message(self) -> bytes | None:
        while not self._events:
            try:
                data = await self.reader.read(256 * 1024)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self.proto.receive_eof()
                self._events.append(None)
                break
            self.proto.receive_data(data)
            self._collect()
        message = self._events.pop(0)
        if message is None:
            self._events.append(None)  # stays closed
            self.peer_closed.set()
        return message

    def send(self, data: bytes) -> None:
        with contextlib.suppress(Exception):  # sending after close is a no-op, as on a closed socket
            self.proto.send_binary(data)
        self._flush()

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    async def close(self, code: int = 1000, reason: str = "", *, linger: float = 2.0) -> None:
        """The closing handshake: our close frame, then up to `linger` seconds for the peer's answer
        (read by whoever reads this channel) before the socket closes."""
        with contextlib.suppress(Exception):
            self.proto.send_close(code, reason)
        self._flush()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(linger):
                await self.peer_closed.wait()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


class WebSocketTransport:
    """SPDY tunnelled in binary WebSocket messages (`SPDY/3.1+portforward.k8s.io`): a byte transport."""

    def __init__(self, channel: WebSocketChannel) -> None:
        self.channel = channel

    async def read(self) -> bytes:
        while (message := await self.channel.read_message()) is not None:
            if message:
                return message
        return b""

    def write(self, data: bytes) -> None:
        self.channel.send(data)

    async def drain(self) -> None:
        await self.channel.drain()

    async def close(self) -> None:
        await self.channel.close()
