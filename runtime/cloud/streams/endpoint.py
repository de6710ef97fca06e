"""The stream endpoint: what API servers send to kubelets, served for the pods of this cloud's edges.

    GET  /containerLogs/{ns}/{pod}/{container}?follow&tailLines&sinceSeconds&sinceTime&timestamps&
         previous&limitBytes                                             → logs over a tunnel
    POST|GET /exec/{ns}/{pod}[/{uid}]/{container}?command=…&stdin&stdout&stderr&tty,
             /attach/…, /portForward/{ns}/{pod}[/{uid}]                  → the upgrade, see sessions

TLS with a client certificate (``ssl_context``, verified against the cluster CA by the TLS layer)
whose CN is one of ``clients`` (the API server's kubelet-client identity): anyone else is refused by
403 (without a certificate at the handshake when no ``bearer`` is given). With ``bearer``, the two
read-only usage routes also take ``Authorization: Bearer`` reviewed by the API server (bearer.py:
401/403 otherwise) — what metrics-server sends by default; streams never do. The pod is looked up in
Kubernetes; its node must have a live kedge link to this cloud (tunnels.py), or the answer is 503
``edge node X is not connected`` at once (or after ``open_timeout`` when the edge does not dial back).
Requests are read by runtime/streams (h11); errors answer as kubelet's (text/plain, the status code
kube-apiserver turns into the client's error; a Status body to a refused upgrade).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from runtime.cloud.streams import sessions
from runtime.cloud.streams.bearer import BearerReviews
from runtime.cloud.streams.tunnels import Tunnel, Tunnels
from runtime.errors import NotFound, Refused, Unreachable
from runtime.protocol.tunnel import CONTROL, STDOUT, OpenRequest, parse_control
from runtime.streams import (
    StreamRequest,
    UpgradeError,
    accept_command,
    accept_portforward,
    read_request,
    refuse,
    write_response,
)

log = logging.getLogger("kedge.cloudstream")
HEAD_LIMIT = 64 << 10
PodLookup = Callable[[str, str], Awaitable[dict[str, Any]]]  # (namespace, name) → Pod; NotFound
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests",
           500: "InternalError", 503: "ServiceUnavailable"}  # fmt: skip
# kubelet's resource usage of the node a request's Host names: (host, path) -> (status, type, body)
UsageReads = Callable[[str, str], tuple[int, str, bytes]]
USAGE_PATHS = ("/metrics/resource", "/stats/summary")
LOG_OPTIONS = ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous", "limitBytes")


class Request:
    """One request read from an API server (runtime/streams' reader), with its connection."""

    def __init__(
        self, head: StreamRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.head, self.reader, self.writer = head, reader, writer
        self.path = [unquote(p) for p in head.path.split("/") if p]
        self.query = {k: v[-1] for k, v in head.query.items()}

    async def respond(self, status: int, text: str) -> None:
        """kubelet's plain-text error (the API server makes it the client's Status message); an
        upgrade request gets a Status body (what client-go reads from a refused upgrade)."""
        if self.head.header("upgrade"):
            await refuse(self.writer, status, text, REASONS.get(status, "InternalError"))
            return
        write_response(self.writer, status, REASONS.get(status, "Error"), text.encode() + b"\n", "text/plain")
        await self.writer.drain()

    async def start_chunked(self) -> None:
        head = ["HTTP/1.1 200 OK", "Content-Type: text/plain", "Transfer-Encoding: chunked"]
        head.append("Connection: close")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data) if data else b"0\r\n\r\n")
        await self.writer.drain()


def peer_cn(writer: asyncio.StreamWriter) -> str:
    cert: Any = writer.get_extra_info("peercert") or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


class StreamEndpoint:
    def __init__(
        self,
        tunnels: Tunnels,
        pods: PodLookup,
        ssl_context: ssl.SSLContext,
        clients: list[str],
        usage: UsageReads | None = None,
        bearer: BearerReviews | None = None,
    ) -> None:
        self.tunnels, self.pods, self.ssl_context = tunnels, pods, ssl_context
        self.clients = set(clients)
        self.usage = usage  # GET /metrics/resource, /stats/summary of the node the Host names
        self.bearer = bearer  # a bearer token on those two routes (bearer.py); ssl: CERT_OPTIONAL then
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connection, host, port, ssl=self.ssl_context,
                                                  ssl_handshake_timeout=10.0)  # fmt: skip
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            req = Request(await read_request(reader), reader, writer)
            await self._route(req)
        except (OSError, TimeoutError, UpgradeError, ssl.SSLError) as exc:
            log.debug("stream endpoint connection ended: %r", exc)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    async def _allowed(self, req: Request) -> bool:
        """A client certificate with a listed CN; or, for the usage routes only, a bearer token that
        the API server's TokenReview and SubjectAccessReview let read them (bearer.py)."""
        cn = peer_cn(req.writer)
        if cn in self.clients:
            return True
        path, auth = "/" + "/".join(req.path), req.head.header("authorization") or ""
        if self.bearer is not None and self.usage is not None and path in USAGE_PATHS and auth:
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            status, text = await self.bearer.check(token, path) if token else (401, "Unauthorized")
            if status == 200:
                return True
            await req.respond(status, text)
            return False
        log.warning("stream endpoint: refused client certificate %r", cn)
        await req.respond(403, f"client certificate {cn!r} may not open streams")
        return False

    async def _route(self, req: Request) -> None:
        if not await self._allowed(req):
            return
        kind = req.path[0] if req.path else ""
        try:
            if kind == "containerLogs" and len(req.path) == 4:
                await self._logs(req)
            elif kind in ("exec", "attach") and len(req.path) in (4, 5):
                await self._upgrade(req, kind)
            elif kind == "portForward" and len(req.path) in (3, 4):
                await self._upgrade(req, "portforward")
            elif self.usage is not None and "/" + "/".join(req.path) in USAGE_PATHS:
                status, ctype, body = self.usage(req.head.header("host") or "", "/" + "/".join(req.path))
                write_response(req.writer, status, REASONS.get(status, "OK"), body, ctype)
                await req.writer.drain()
            else:
                await req.respond(404, f"no such path {req.head.path!r}")
        except NotFound as exc:
            await req.respond(404, str(exc))
        except Unreachable as exc:
            await req.respond(503, str(exc))
        except Refused as exc:
            await req.respond(exc.status, str(exc))

    async def _pod(self, ns: str, name: str, uid: str = "") -> tuple[str, str]:
        """(node, uid) of the pod; NotFound as the API server words it."""
        pod = await self.pods(ns, name)
        meta, node = pod.get("metadata") or {}, (pod.get("spec") or {}).get("nodeName") or ""
        if uid and meta.get("uid") != uid:
            raise NotFound(f'pod "{name}" with UID {uid} not found')
        if not node:
            raise Refused(f'pod "{name}" is not bound to a node', status=400)
        return node, str(meta.get("uid") or "")

    async def open(self, req: Request, kind: str, options: dict[str, Any]) -> Tunnel:
        """The tunnel of a session for the pod the path names, ``ready`` — or the edge's refusal."""
        ns, name = req.path[1], req.path[2]
        uid = req.path[3] if len(req.path) == (5 if kind != "portforward" else 4) else ""
        container = req.path[-1] if kind != "portforward" else ""
        node, uid = await self._pod(ns, name, uid)
        tunnel = await self.tunnels.open(node, OpenRequest("", kind, ns, name, uid, container, options))
        try:
            first = await asyncio.wait_for(tunnel.recv(), self.tunnels.open_timeout)
        except TimeoutError:
            first = None
        doc = parse_control(first[1]) if first is not None and first[0] == CONTROL else {}
        if doc.get("type") == "ready":
            return tunnel
        await tunnel.close()
        if doc.get("type") == "error":
            raise Refused(
                str(doc.get("message") or "refused by the edge"), status=int(doc.get("code") or 500)
            )
        raise Unreachable(f"edge node {node} did not answer the stream session")

    async def _logs(self, req: Request) -> None:
        options = {k: req.query[k] for k in LOG_OPTIONS if k in req.query}
        tunnel = await self.open(req, "logs", options)
        try:
            await req.start_chunked()
            gone = asyncio.ensure_future(req.reader.read(1))  # the API server hangs up: the client left
            while True:
                nxt = asyncio.ensure_future(tunnel.recv())
                await asyncio.wait({nxt, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    break
                item = nxt.result()
                if item is None:
                    await req.chunk(b"")
                    break
                if item[0] == STDOUT and item[1]:
                    await req.chunk(item[1])
            gone.cancel()
        finally:
            await tunnel.close()

    async def _upgrade(self, req: Request, kind: str) -> None:
        """exec/attach: one tunnel, opened (the container checked) before the client's upgrade is
        answered; port-forward: the pod checked, then a tunnel per forwarded connection."""
        if kind == "portforward":
            await (await self.open(req, kind, {})).close()
            forward = await accept_portforward(req.head, req.reader, req.writer)
            if forward is not None:
                await sessions.serve_portforward(
                    forward, lambda port: self.open(req, kind, {"port": str(port)})
                )
            return
        tunnel = await self.open(req, kind, {k: v for k, v in req.head.query.items()})
        try:
            command = await accept_command(req.head, req.reader, req.writer)
            if command is not None:
                await sessions.serve_command(command, tunnel)
        finally:
            await tunnel.close()
