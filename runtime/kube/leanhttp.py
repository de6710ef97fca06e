"""Many small writes over a few keep-alive HTTP/1.1 connections, framed by h11 (httpx's own HTTP/1.1
engine) without httpx's per-request machinery.

Why not KubeClient (httpx) for the cloud's Lease renewals: measured against the embedded API server,
one httpx request costs 1.6 to 2.8 ms of client CPU (pool bookkeeping, request/response models, the auth
flow per request), and more as requests queue for the pool. 10,000 edges whose Leases are renewed every
15 s are ≈ 670 writes/s — more than a core for the HTTP client alone. Here a request is one h11 cycle on
a connection kept open: same kubeconfig (lightkube's TLS context and auth flow, re-run every minute and
on 401), same typed errors (runtime/kube/errors.py). Each connection carries one request at a time;
``connections`` of them bound the requests in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlsplit

import h11
import httpx
from lightkube.config.client_adapter import user_auth, verify_cluster

from runtime.kube.client import KubeClient
from runtime.kube.errors import error_for_status, status_from_body, unreachable

AUTH_REFRESH = 60.0  # seconds: token files rotate (in-cluster ServiceAccount tokens)
MERGE_PATCH = "application/merge-patch+json"


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time, its framing kept by an h11.Connection."""

    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's (SSL) transport
        self.h11 = h11.Connection(h11.CLIENT)
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.status = 0
        self.body: list[bytes] = []
        self.lost = False

    @property
    def reusable(self) -> bool:
        return not self.lost and self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._drain()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        with contextlib.suppress(h11.RemoteProtocolError):
            self.h11.receive_data(b"")
            self._drain()
        self._fail(ConnectionError(f"connection lost: {exc or 'closed by server'}"))

    def _drain(self) -> None:
        """Feed h11's events into the pending response; resolve it at EndOfMessage."""
        while self.waiter is not None and not self.waiter.done():
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(ConnectionError(f"bad response: {exc}"))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self.status = event.status_code
            elif isinstance(event, h11.Data):
                self.body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self.waiter.set_result((self.status, b"".join(self.body)))
                if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                    self.h11.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                self._fail(ConnectionError("connection closed by server"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def roundtrip(self, request: h11.Request, body: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.status, self.body = 0, []
        self.waiter = asyncio.get_running_loop().create_future()
        out = self.h11.send(request) or b""
        out += (self.h11.send(h11.Data(data=body)) or b"") + (self.h11.send(h11.EndOfMessage()) or b"")
        self.transport.write(out)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LeanHTTP:
    """``patch(path, body)`` (merge PATCH) and ``create(path, body)`` (POST): return the status code,
    raise kedge's typed errors (KubeNotFound, AlreadyExists, Unreachable …) like KubeClient does."""

    def __init__(
        self,
        server: str,
        ssl_context: Any,
        auth: httpx.Auth | None,
        *,
        connections: int = 8,
        timeout: float = 10.0,
    ) -> None:
        u = urlsplit(server)
        self.server = server.rstrip("/")
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.host_header = u.netloc
        self.ssl = ssl_context if u.scheme == "https" else None
        self.auth, self.timeout = auth, timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Conn] = []
        self._authorization: str | None = None
        self._auth_at = -AUTH_REFRESH
        self.requests = 0

    @classmethod
    def for_client(cls, client: KubeClient, *, connections: int = 8) -> LeanHTTP:
        """The same server, TLS trust, client certificate and credentials as ``client``."""
        single = client.source_info.single
        if single.user is None:
            raise ValueError("kubeconfig names no user")
        ctx = verify_cluster(single.cluster, single.user, single.abs_file, trust_env=False)
        return cls(
            client.server, ctx, user_auth(single.user), connections=connections, timeout=client.timeout
        )

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    async def patch(self, path: str, body: bytes) -> int:
        return await self.request(b"PATCH", path, body, MERGE_PATCH)

    async def create(self, path: str, body: bytes) -> int:
        return await self.request(b"POST", path, body, "application/json")

    async def request(self, method: bytes, path: str, body: bytes, ctype: str) -> int:
        for attempt in range(2):
            header = await self._auth_header(refresh=attempt > 0)
            status, data = await self._send(method, path, body, ctype, header)
            if status != 401 or self.auth is None:
                break
        if status >= 400:
            raise error_for_status(self.server, status, status_from_body(status, data))
        return status

    async def _auth_header(self, refresh: bool) -> str | None:
        """The Authorization value from the kubeconfig's auth flow (bearer, token file, exec, basic)."""
        if self.auth is None:
            return None
        now = time.monotonic()
        if refresh or self._authorization is None or now - self._auth_at > AUTH_REFRESH:
            flow = self.auth.async_auth_flow(httpx.Request("GET", self.server))
            req = await flow.__anext__()
            if refresh:  # tell the flow the last credentials were refused (exec plugins fetch anew)
                with contextlib.suppress(StopAsyncIteration):
                    req = await flow.asend(httpx.Response(401, request=req))
            await flow.aclose()
            self._authorization = req.headers.get("Authorization")
            self._auth_at = now
        return self._authorization

    async def _send(
        self, method: bytes, path: str, body: bytes, ctype: str, authorization: str | None
    ) -> tuple[int, bytes]:
        headers = [
            (b"Host", self.host_header.encode()),
            (b"Accept", b"application/json"),
            (b"User-Agent", b"kedge-lean-http"),
            (b"Content-Type", ctype.encode()),
            (b"Content-Length", str(len(body)).encode()),
        ]
        if authorization:
            headers.append((b"Authorization", authorization.encode()))
        request = h11.Request(method=method, target=path.encode(), headers=headers)
        async with self._slots:
            for attempt in range(2):  # a reused connection the server has closed meanwhile: once more
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else None
                try:
                    async with asyncio.timeout(self.timeout):
                        if conn is None:
                            conn = await self._connect()
                        status, data = await conn.roundtrip(request, body)
                except (OSError, TimeoutError) as exc:
                    if conn is not None:
                        conn.close()
                    if reused and attempt == 0 and not isinstance(exc, TimeoutError):
                        continue
                    raise unreachable(self.server, exc) from exc
                self.requests += 1
                if conn.reusable:
                    self._idle.append(conn)
                else:
                    conn.close()
                return status, data
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            _Conn, self.host, self.port, ssl=self.ssl, server_hostname=self.host if self.ssl else None
        )
        return conn
