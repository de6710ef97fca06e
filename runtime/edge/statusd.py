"""The edge runtime's local health endpoint: HTTP on a 0600 unix socket and TCP (127.0.0.1:10551 by default).

    GET /status    the runtime's health as JSON (what `kedge status` prints)
    GET /metrics   Prometheus text format (runtime/edge/metrics.py, through prometheus_client)

Why no framework: two routes do not justify one in the smallest process kedge runs; h11 frames the
request and the answer (one request per connection, its head bounded). The TCP listener (the config's
metrics_address, "host:port", loopback by default; a bare ":port" binds 127.0.0.1; "" turns it off)
serves the same routes. The socket is
0600 because the status names the node, the cloud and the pods; the directory is created 0755 as
/run usually is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11

from runtime.edge import http11
from runtime.edge.metrics import EdgeMetrics

log = logging.getLogger("kedge.edge.statusd")
StatusFn = Callable[[], Any]  # returns a dict, or an awaitable of one
MAX_HEAD = 16 << 10  # bytes of a request head


class StatusServer:
    def __init__(self, socket_path: Path, status: StatusFn, metrics: EdgeMetrics, tcp: str = "") -> None:
        self.socket_path = socket_path
        self.status = status
        self.metrics = metrics
        self.tcp = tcp
        self.tcp_address = ""  # host:port actually bound ("" when off or the port was taken)
        self._servers: list[asyncio.Server] = []

    async def _status(self) -> dict[str, Any]:
        result = self.status()
        if asyncio.iscoroutine(result):
            result = await result
        return dict(result)

    async def _route(self, target: str) -> tuple[int, str, bytes]:
        if target.startswith("/metrics"):
            body, ctype = self.metrics.exposition(await self._status())
            return 200, ctype, body
        if target in ("/", "/status"):
            return 200, "application/json", json.dumps(await self._status(), default=str).encode()
        return 404, "text/plain", b"not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            async with asyncio.timeout(10):
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(http11.CHUNK))
                    event = conn.next_event()
            if not isinstance(event, h11.Request):
                return
            code, ctype, body = await self._route(event.target.decode("latin-1"))
            head = [("Content-Type", ctype), ("Content-Length", str(len(body)))]
            reason = b"OK" if code == 200 else b"Not Found"
            out = conn.send(h11.Response(status_code=code, headers=head, reason=reason)) or b""
            writer.write(
                out + (conn.send(h11.Data(data=body)) or b"") + (conn.send(h11.EndOfMessage()) or b"")
            )
            await writer.drain()
        except Exception as exc:  # a broken client must never take the runtime down
            log.debug("status request failed: %s", exc)
        finally:
            writer.close()

    async def start(self) -> None:
        path = self.socket_path
        if len(str(path).encode()) > 107:  # sun_path holds 108 bytes including the NUL
            from runtime.errors import ConfigError

            raise ConfigError(
                f"status.socket {path}: {len(str(path).encode())} bytes, a unix socket path "
                "is limited to 107",
                hint="set a shorter one: --set status.socket=/run/…",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale socket of a killed runtime
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._servers.append(await asyncio.start_unix_server(self._handle, sock=sock))
        tcp = await self._listen_tcp() if self.tcp else ""
        log.info("status endpoint on %s%s", path, f" and {tcp}" if tcp else "")

    async def _listen_tcp(self) -> str:
        """The TCP listener for Prometheus; a port already taken (another edge on this machine, the
        default port in use) is said once and costs only the TCP endpoint, never the runtime."""
        host, _, port = self.tcp.rpartition(":")
        try:
            server = await asyncio.start_server(self._handle, host or "127.0.0.1", int(port))
        except OSError as exc:
            log.warning(
                "metrics_address %s: cannot listen (%s); /metrics only on the status socket", self.tcp, exc
            )
            return ""
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        self.tcp_address = f"{bound[0]}:{bound[1]}"
        return self.tcp_address

    async def stop(self) -> None:
        for s in self._servers:
            s.close()
            await s.wait_closed()
        self._servers.clear()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def query(socket_path: Path, path: str = "/status", timeout: float = 3.0) -> tuple[int, bytes]:
    """Blocking client for the CLI: (HTTP status, body). Raises OSError when nothing listens or the
    answer is no HTTP response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(socket_path))
        return http11.get_blocking(s, path, [("Host", "kedge")])


def read_status(socket_path: Path, timeout: float = 3.0) -> dict[str, Any] | None:
    """The running runtime's status, or None when it does not answer."""
    try:
        code, body = query(socket_path, "/status", timeout)
    except OSError:
        return None
    if code != 200:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
