"""One HTTP/1.1 request and its response, framed by h11 (httpx's own engine), for the edge's small
exchanges: the Docker engine probe (engine.py), httpGet probes (pods/probes.py) and the local status
endpoint's client (statusd.py; its server side uses h11 directly).

    exchange = Exchange(head_limit=64 << 10, body_limit=8 << 20)   # status_only=True: stop at the status
    writer.write(exchange.request("/version", [("Host", "docker")]))
    while not exchange.feed(await reader.read(CHUNK)): ...          # b"" at EOF
    exchange.status, exchange.body

Why not an HTTP client library: these are one GET each, in the smallest process kedge runs (design.md
§3); h11 is already shipped (runtime/kube/leanhttp.py) and costs no measurable RSS. Limits are bytes:
a response head over ``head_limit`` or a body over ``body_limit`` (None: unbounded) is refused as
BadResponse (an OSError, so callers treat it as a failed connection), as is anything h11 cannot parse.
"""

from __future__ import annotations

import asyncio
import socket

import h11

CHUNK = 65536


class BadResponse(ConnectionError):
    """The peer's answer is no HTTP response, or is larger than allowed."""


class Exchange:
    """Sans-I/O: bytes of one response in, ``done`` once the status (or the whole body) is known."""

    def __init__(
        self, *, head_limit: int = 64 << 10, body_limit: int | None = None, status_only: bool = False
    ) -> None:
        self.conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=head_limit)
        self.head_limit, self.body_limit, self.status_only = head_limit, body_limit, status_only
        self._fed = 0
        self.status = 0
        self._body: list[bytes] = []
        self._size = 0

    @property
    def body(self) -> bytes:
        return b"".join(self._body)

    def request(self, target: str, headers: list[tuple[str, str]]) -> bytes:
        """The request's bytes (GET, no body). h11 refuses a target or header that would break framing."""
        head = h11.Request(method="GET", target=target, headers=[*headers, ("Connection", "close")])
        return (self.conn.send(head) or b"") + (self.conn.send(h11.EndOfMessage()) or b"")

    def feed(self, data: bytes) -> bool:
        """Take bytes read (b"" at EOF); True once the response is complete (or its status, if no body)."""
        self._fed += len(data)
        try:
            self.conn.receive_data(data)
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    return False
                if isinstance(event, h11.Response):
                    if self._fed - len(self.conn.trailing_data[0]) > self.head_limit:
                        raise BadResponse(f"response head over {self.head_limit} bytes")
                    self.status = event.status_code
                    if self.status_only:
                        return True
                elif isinstance(event, h11.Data):
                    self._size += len(event.data)
                    if self.body_limit is not None and self._size > self.body_limit:
                        raise BadResponse(f"response body over {self.body_limit} bytes")
                    self._body.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return True
        except h11.RemoteProtocolError as exc:
            raise BadResponse(f"bad HTTP response: {exc}") from exc


async def get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str, headers: list[tuple[str, str]],
    *, head_limit: int = 64 << 10, body_limit: int | None = None, status_only: bool = False,
) -> tuple[int, bytes]:  # fmt: skip
    """GET over an open stream: (status, body). The caller closes the stream and bounds the time."""
    exchange = Exchange(head_limit=head_limit, body_limit=body_limit, status_only=status_only)
    writer.write(exchange.request(target, headers))
    await writer.drain()
    while not exchange.feed(await reader.read(CHUNK)):
        pass
    return exchange.status, exchange.body


def get_blocking(
    sock: socket.socket, target: str, headers: list[tuple[str, str]], *, body_limit: int | None = None
) -> tuple[int, bytes]:
    """The same over a connected blocking socket (the CLI's side of the status endpoint)."""
    exchange = Exchange(body_limit=body_limit)
    sock.sendall(exchange.request(target, headers))
    while not exchange.feed(sock.recv(CHUNK)):
        pass
    return exchange.status, exchange.body
