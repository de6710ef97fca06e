"""pods/log, pods/exec, pods/attach, pods/portforward: the request passed to the node's kubelet (or
the kedge cloud's stream endpoint) with the server's kubelet-client certificate, as kube-apiserver.

- **log**: a GET whose (chunked) answer is streamed to the client; a non-200 answer becomes a Status
  with the kubelet's text as message (kube-apiserver's GenericHttpResponseChecker).
- **exec, attach, portforward**: the client's upgrade request goes on unchanged (kube-apiserver 1.28's
  UpgradeAwareHandler: SPDY or WebSocket, whatever the client offered); on ``101`` the kubelet's
  answer is given to the client and from then on bytes are copied both ways until either side
  closes. aiohttp has no hijack: its connection's payload-parser slot (where its own WebSocket
  reader goes) takes a feed into a StreamReader that pauses the socket when full, and the upstream's
  bytes are written to the client's transport with the protocol's drain. A refused upgrade (e.g.
  WebSocket offered to a kubelet that only speaks SPDY) is answered as the kubelet answered, so
  kubectl falls back.

The kubelet's serving certificate is not verified (kube-apiserver without
``--kubelet-certificate-authority``; per-edge serving certificates are out of scope).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from runtime.apiserver.api import Api
from runtime.apiserver.http.context import ApiRequest
from runtime.apiserver.http.status_errors import StatusError, method_not_allowed
from runtime.apiserver.kubelet.dial import CHUNK, KubeletClient, Upstream, connect
from runtime.apiserver.kubelet.location import Location, log_location, stream_location

HOP = {"authorization", "host", "content-length", "transfer-encoding"}
REASONS = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests",
           503: "ServiceUnavailable", 504: "Timeout"}  # fmt: skip
SUBS = ("log", "exec", "attach", "portforward")


class _Feed:
    """The client's bytes after the upgrade, into a StreamReader (in aiohttp's payload-parser slot)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class KubeletProxy:
    def __init__(self, api: Api, client: KubeletClient | None) -> None:
        self.api, self.client = api, client

    async def serve(self, request: web.Request, ctx: ApiRequest) -> web.StreamResponse:
        ns, name, sub = ctx.target.namespace or "default", ctx.target.name or "", ctx.target.sub
        query = dict(request.query)
        if sub == "log":
            if request.method != "GET":
                raise method_not_allowed()
            loc = log_location(self.api, ns, name, query)
            if loc is None:
                return web.Response(status=200, body=b"", content_type="text/plain")
            return await self._logs(request, loc)
        if request.method not in ("GET", "POST"):
            raise method_not_allowed()
        loc = stream_location(self.api, ns, name, sub, query, request.rel_url.raw_query_string)
        return await self._upgrade(request, loc)

    async def _connect(self, loc: Location, method: str, headers: list[tuple[str, str]]) -> Upstream:
        if self.client is None:
            raise StatusError(500, "InternalError", "this server has no kubelet client certificate")
        return await connect(self.client, loc.host, loc.port, method, loc.path, headers)

    @staticmethod
    async def _refusal(up: Upstream) -> StatusError:
        code = up.response.status_code if up.response is not None else 500
        text = (await up.body()).decode("utf-8", "replace").strip()
        up.close()
        return StatusError(code, REASONS.get(code, "InternalError"), text or f"kubelet answered {code}")

    async def _logs(self, request: web.Request, loc: Location) -> web.StreamResponse:
        up = await self._connect(loc, "GET", [("Accept", "*/*")])
        if up.response is None or up.response.status_code != 200:
            raise await self._refusal(up)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        try:
            await resp.prepare(request)
            while True:
                data = await self._unless_gone(request, up.next_data())
                if data is None:
                    break
                await resp.write(data)
            await resp.write_eof()
        finally:
            up.close()
        return resp

    @staticmethod
    async def _unless_gone(request: web.Request, read: Any) -> bytes | None:
        """The next upstream chunk; None once upstream ended or the client hung up (checked every second,
        so a `logs -f` of a quiet container does not outlive its client)."""
        task = asyncio.ensure_future(read)
        while True:
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                return task.result()
            transport = request.transport
            if transport is None or transport.is_closing():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                return None

    async def _upgrade(self, request: web.Request, loc: Location) -> web.StreamResponse:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
        up = await self._connect(loc, request.method, headers)
        response = up.response
        assert response is not None
        if response.status_code != 101:
            body = await up.body()
            up.close()
            dropped = (b"transfer-encoding", b"content-length", b"connection")
            passed = {k.decode(): v.decode() for k, v in response.headers if k.lower() not in dropped}
            return web.Response(status=response.status_code, body=body, headers=passed)
        transport, protocol = request.transport, request.protocol
        assert transport is not None
        client_in = asyncio.StreamReader(limit=4 * CHUNK)
        client_in.set_transport(transport)
        protocol.set_parser(_Feed(client_in))  # type: ignore[arg-type]
        resp = web.StreamResponse(status=101, reason="Switching Protocols")
        for k, v in response.headers:
            resp.headers.add(k.decode("latin-1"), v.decode("latin-1"))
        await resp.prepare(request)
        resp.force_close()
        leftover = up.conn.trailing_data[0]
        if leftover:
            transport.write(bytes(leftover))
        await _splice(client_in, up, transport, protocol)
        return resp


async def _splice(
    client_in: asyncio.StreamReader, up: Upstream, transport: asyncio.Transport, protocol: Any
) -> None:
    """Copy bytes both ways until either side closes; then both are closed."""

    async def to_kubelet() -> None:
        while data := await client_in.read(CHUNK):
            up.writer.write(data)
            await up.writer.drain()

    async def to_client() -> None:
        while data := await up.reader.read(CHUNK):
            if transport.is_closing():
                return
            transport.write(data)
            if transport.get_write_buffer_size() > 4 * CHUNK:
                await protocol._drain_helper()

    tasks = [asyncio.ensure_future(to_kubelet()), asyncio.ensure_future(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        up.close()
