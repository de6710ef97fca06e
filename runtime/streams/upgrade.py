"""The HTTP/1.1 upgrade of a stream request on raw asyncio streams: read the request (h11), then answer
101 for SPDY/3.1 (`X-Stream-Protocol-Version` chosen among what the client offers) or for a WebSocket
(the `websockets` library's sans-I/O handshake, subprotocol chosen among the client's) — or refuse with
a non-101 answer, on which kubectl 1.32 falls back from WebSocket to SPDY.

Facts (client-go, apimachinery): SPDY clients send `Connection: Upgrade`, `Upgrade: SPDY/3.1` and one
`X-Stream-Protocol-Version` header per protocol they speak, most preferred first; kubectl 1.32 offers
WebSocket `v5.channel.k8s.io` for exec/attach and `SPDY/3.1+portforward.k8s.io` (SPDY inside binary
WebSocket messages) for port-forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import h11
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from runtime.streams.transport import WebSocketChannel

MAX_REQUEST_BYTES = 64 * 1024


class UpgradeError(Exception):
    """The request could not be read or upgraded (a refusal was written when possible)."""


@dataclass
class StreamRequest:
    """An HTTP/1.1 request read from a raw connection; `rest` holds bytes read past its end."""

    method: str
    target: str
    headers: list[tuple[str, str]]  # names lower case, in order, repeats kept
    rest: bytes = b""
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path, self.query = parts.path, parse_qs(parts.query, keep_blank_values=True)

    @classmethod
    def from_h11(cls, conn: h11.Connection, event: h11.Request) -> StreamRequest:
        """For a caller that read the request head with its own h11 connection: the request, with the
        bytes h11 holds past the head (call before feeding it anything else)."""
        headers = [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in event.headers]
        request = cls(event.method.decode(), event.target.decode("latin-1"), headers)
        with contextlib.suppress(h11.RemoteProtocolError):
            while conn.their_state is h11.SEND_BODY and conn.next_event() not in (h11.NEED_DATA, h11.PAUSED):
                pass
        request.rest = conn.trailing_data[0]
        return request

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name.lower()), None)

    def header_values(self, name: str) -> list[str]:
        """Every value of a repeated or comma-separated header."""
        return [p.strip() for n, v in self.headers if n == name.lower() for p in v.split(",") if p.strip()]

    def flag(self, name: str) -> bool:
        return (self.query.get(name) or [""])[-1].lower() in ("1", "true")

    @property
    def websocket(self) -> bool:
        return "websocket" in (h.lower() for h in self.header_values("upgrade"))


async def read_request(reader: asyncio.StreamReader, *, head_wait: float = 30.0) -> StreamRequest:
    """Read one request head with h11 (no body: stream requests have none)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
    async with asyncio.timeout(head_wait):
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpgradeError(f"bad HTTP request: {exc}") from exc
            if isinstance(event, h11.Request):
                return StreamRequest.from_h11(conn, event)
            if event is h11.NEED_DATA:
                data = await reader.read(16384)
                if not data:
                    raise UpgradeError("connection closed before a complete request")
                conn.receive_data(data)
            else:
                raise UpgradeError(f"unexpected HTTP event {event!r}")


def write_response(
    writer: asyncio.StreamWriter, status: int, reason: str, body: bytes = b"", ctype: str = ""
) -> None:
    head = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    if ctype:
        head.append(f"Content-Type: {ctype}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


async def refuse(writer: asyncio.StreamWriter, status: int, message: str, reason: str = "BadRequest") -> None:
    """A non-101 answer with a Kubernetes Status body, then close (kubectl shows `message`)."""
    body: dict[str, object] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": status}
    write_response(writer, status, reason, json.dumps(body).encode(), "application/json")
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
    writer.close()


def choose(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The client's most preferred protocol that we speak (apimachinery's negotiation order)."""
    return next((p for p in offered if p in supported), None)


async def accept_spdy(
    request: StreamRequest, writer: asyncio.StreamWriter, supported: tuple[str, ...]
) -> str | None:
    """Answer 101 for SPDY/3.1 with the chosen stream protocol, or refuse (403) and return None."""
    if "spdy/3.1" not in (u.lower() for u in request.header_values("upgrade")):
        await refuse(writer, 400, "unable to upgrade: missing upgrade headers in request")
        return None
    chosen = choose(request.header_values("x-stream-protocol-version"), supported)
    if chosen is None:
        offered = ", ".join(request.header_values("x-stream-protocol-version")) or "none"
        why = f"unable to negotiate protocol: client supports {offered}, server accepts {list(supported)}"
        await refuse(writer, 403, f"unable to upgrade: {why}", "Forbidden")
        return None
    head = ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: SPDY/3.1"]
    head.append(f"X-Stream-Protocol-Version: {chosen}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
    await writer.drain()
    return chosen


async def accept_websocket(
    request: StreamRequest,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    supported: tuple[str, ...],
    *,
    allowed: bool = True,
    max_message: int = 16 << 20,
) -> WebSocketChannel | None:
    """The WebSocket handshake with one of `supported` (server preference order); no common subprotocol,
    a bad handshake or `allowed=False` gets a 400 (non-101: kubectl falls back to SPDY).

    The subprotocol is negotiated here, not by `websockets`: `SPDY/3.1+portforward.k8s.io` is not an
    RFC 6455 token (the "/"), which the library rejects; Go's gorilla/websocket accepts it."""
    if not allowed:
        await refuse(writer, 400, "WebSocket streams are not served here; use SPDY")
        return None
    offered = request.header_values("sec-websocket-protocol")
    chosen = next((p for p in supported if p in offered), None)
    if chosen is None:
        await refuse(writer, 400, f"unable to upgrade: no supported WebSocket subprotocol in {offered}")
        return None
    proto = ServerProtocol(max_size=max_message)
    # the protocol object parses the handshake itself before it reads frames: give it the head h11 read
    head = f"GET {request.target} HTTP/1.1\r\n"
    head += "".join(f"{n}: {v}\r\n" for n, v in request.headers if n != "sec-websocket-protocol")
    proto.receive_data((head + "\r\n").encode("latin-1"))
    ws_request = next((e for e in proto.events_received() if isinstance(e, WsRequest)), None)
    if ws_request is None:  # the library could not parse the head
        await refuse(writer, 400, "bad WebSocket handshake")
        return None
    response = proto.accept(ws_request)
    if response.status_code == 101:
        response.headers["Sec-WebSocket-Protocol"] = chosen
    proto.send_response(response)
    writer.write(b"".join(proto.data_to_send()))
    await writer.drain()
    if response.status_code != 101:
        writer.close()
        return None
    return WebSocketChannel(proto, reader, writer, request.rest, chosen)
