"""HTTP glue: one aiohttp handler that authenticates, routes by path and verb, and renders errors.

Every failure leaves as a `kind: Status` body; nothing a client sends can take the server down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from runtime.apiserver.api import MAX_BODY, Api
from runtime.apiserver.controllers.kinds import stored_only_message
from runtime.apiserver.handlers import deletes, patches, reads, reviews, subresources, writes
from runtime.apiserver.http import healthz
from runtime.apiserver.http.auth import ANONYMOUS, PUBLIC_PATHS, User, authenticate
from runtime.apiserver.http.context import ApiRequest, Target, resolve
from runtime.apiserver.http.discovery import Discovery, version_info
from runtime.apiserver.http.metrics import ApiMetrics
from runtime.apiserver.http.status_errors import (
    StatusError,
    internal,
    method_not_allowed,
    path_not_found,
    too_large,
    unauthorized,
)
from runtime.apiserver.http.watch import serve_watch
from runtime.apiserver.kubelet.proxy import SUBS, KubeletProxy
from runtime.apiserver.metricsapi import GROUP, VERSION, MetricsApi
from runtime.apiserver.openapi import serve as openapi
from runtime.apiserver.registry import crds as _crds  # noqa: F401  (registers CRD validation import path)
from runtime.apiserver.registry.resources import REVIEW_KINDS

log = logging.getLogger("kedge.apiserver")
JSON = "application/json"
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _is_json(ctype: str) -> bool:
    return ctype.split(";", 1)[0].strip() == JSON


def _json(
    status: int, body: bytes, ctype: str = JSON, warnings: list[str] | None = None, *, newline: bool = True
) -> web.Response:
    if newline and _is_json(ctype) and not body.endswith(b"\n"):
        body += b"\n"  # kube-apiserver's JSON encoder ends every object with a newline
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": ctype, "Cache-Control": "no-cache, private"})
    for w in warnings or ():
        headers.add("Warning", '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return web.Response(body=body, status=status, headers=headers)


async def _stream(request: web.Request, status: int, parts: list[bytes], ctype: str) -> web.StreamResponse:
    resp = web.StreamResponse(
        status=status, headers={"Content-Type": ctype, "Cache-Control": "no-cache, private"}
    )
    if _is_json(ctype):
        parts = [*parts, b"\n"]  # as _json: the encoder's newline after the object
    resp.content_length = sum(len(p) for p in parts)
    await resp.prepare(request)
    for p in parts:
        await resp.write(p)
    await resp.write_eof()
    return resp


_LABELS = "kedge.metric_labels"  # request slot: (verb, group, resource, subresource) once resolved


class Handler:
    def __init__(
        self, api: Api, metrics: ApiMetrics, kubelet: KubeletProxy, usage: MetricsApi | None = None
    ) -> None:
        self.api = api
        self.metrics = metrics
        self.kubelet = kubelet
        self.usage = usage  # metrics.k8s.io, when the server is given the cloud's usage (metricsapi/)
        extra = {(GROUP, VERSION): MetricsApi.discovery_entries()} if usage is not None else {}
        self.discovery = Discovery(api.registry, extra)
        self.openapi = openapi.OpenAPI(api.registry)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        start = time.monotonic()
        code = 500  # what a dropped connection counts as
        self.metrics.inflight.inc()
        try:
            resp = await self._answer(request)
            code = resp.status
            return resp
        finally:
            self.metrics.inflight.dec()
            labels = request.get(_LABELS) or (_VERBS.get(request.method, "other"), "", "", "")
            took = None if labels[0] == "watch" else time.monotonic() - start
            self.metrics.observe(labels, code, took)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except StatusError as exc:
            return _json(exc.code, exc.to_bytes())
        except web.HTTPRequestEntityTooLarge:
            return _json(413, too_large(MAX_BODY).to_bytes())
        except (ConnectionResetError, ConnectionError):
            raise
        except Exception as exc:  # a bug must cost one request, never the server
            log.exception("request %s %s failed", request.method, request.path)
            return _json(500, internal(f"{type(exc).__name__}: {exc}").to_bytes())

    def _authenticate(self, request: web.Request, public: bool) -> User:
        auth = request.headers.get("Authorization", "")
        if not auth:
            if public:
                return ANONYMOUS
            raise unauthorized()
        if not auth.startswith("Bearer "):
            raise unauthorized()
        user = authenticate(auth[7:].strip(), self.api.admin_token, self.api.signer, self.api.store)
        if user is None:
            raise unauthorized()
        return user

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        user = self._authenticate(request, path in PUBLIC_PATHS)
        plain = await self._non_resource(request, path, user)
        if plain is not None:
            return plain
        located = self._locate(request, path)
        if isinstance(located, web.Response):
            return located
        group, version, rest = located
        if self.usage is not None and (group, version) == (GROUP, VERSION):
            verb = "get" if len(rest) in (2, 4) else "list"
            request[_LABELS] = (verb, GROUP, rest[-1] if verb == "list" else rest[-2], "")
            return _json(200, orjson.dumps(await self.usage.answer(request.method, rest, request.query)))
        watch = request.query.get("watch") in ("1", "true")
        if rest and rest[0] == "watch":
            watch, rest = True, rest[1:]
        target = resolve(self.api.registry, group, version, rest)
        method = request.method
        if target.sub in SUBS and target.rt.plural == "pods" and target.rt.group == "":
            return await self._kubelet(request, target, user)
        body = await request.read() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
        if len(body) > MAX_BODY:
            raise too_large(MAX_BODY)
        ctx = ApiRequest(
            method,
            target,
            dict(request.query),
            request.headers,
            body,
            user=user,
            user_agent=request.headers.get("User-Agent", ""),
        )
        verb = self._verb(ctx, watch)
        rt = target.rt
        if not target.sub and verb not in rt.verbs:
            raise method_not_allowed()
        request[_LABELS] = (verb, rt.group, rt.plural, target.sub)
        if verb == "watch":
            return await self._watch(ctx, request)
        status, out, ctype = await self._dispatch(ctx, verb)
        if verb in ("create", "update", "patch") and not target.sub and self.api.control_plane:
            stored_only = stored_only_message(rt.group, rt.kind)
            if stored_only:  # kubectl prints it: the object is kept but nothing will run it
                ctx.warnings.append(stored_only)
        if isinstance(out, reads.ListBody):
            return await _stream(request, status, out, ctype)
        return _json(status, out, ctype, ctx.warnings)

    async def _kubelet(self, request: web.Request, target: Target, user: User) -> web.StreamResponse:
        """pods/log|exec|attach|portforward: passed to the pod's kubelet (kubelet/proxy.py); a long
        stream, so not counted as a request in flight."""
        request[_LABELS] = ("get" if request.method == "GET" else "create", "", "pods", target.sub)
        ctx = ApiRequest(request.method, target, dict(request.query), request.headers, b"", user=user)
        self.metrics.inflight.dec()
        try:
            return await self.kubelet.serve(request, ctx)
        finally:
            self.metrics.inflight.inc()

    async def _watch(self, ctx: ApiRequest, request: web.Request) -> web.StreamResponse:
        """A watch is long-running: counted as an open stream, not as a request in flight."""
        self.metrics.inflight.dec()
        self.metrics.watches.inc()
        try:
            return await serve_watch(self.api, ctx, request)
        finally:
            self.metrics.watches.dec()
            self.metrics.inflight.inc()

    async def _non_resource(self, request: web.Request, path: str, user: User) -> web.Response | None:
        """/healthz, /livez, /readyz (and their checks), /version and /openapi/*; None for other paths."""
        if path in healthz.PATHS or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            excluded = request.query.getall("exclude", [])
            code, text = healthz.answer(path, request.query, excluded, self.api.checks, not user.anonymous)
            return web.Response(
                text=text,
                status=code,
                content_type="text/plain",
                charset="utf-8",
                headers={"X-Content-Type-Options": "nosniff"},
            )
        if path == "/metrics":  # as kube-apiserver: authenticated clients only
            if user.anonymous:
                raise unauthorized()
            body, ctype = self.metrics.exposition()
            return web.Response(body=body, headers={"Content-Type": ctype})
        if path == "/version":
            # WriteRawJSON: not the object encoder, so no newline after it
            return _json(200, orjson.dumps(version_info()), newline=False)
        if path.startswith("/openapi/"):
            reply = await self.openapi.serve(path, request.query, request.headers)
            if reply is None:
                raise path_not_found()
            return web.Response(body=reply.body, status=reply.status, headers=reply.headers)
        return None

    def _locate(self, request: web.Request, path: str) -> web.Response | tuple[str, str, list[str]]:
        """/api/v1/… and /apis/<group>/<version>/… as (group, version, the rest); discovery documents
        for the shorter paths."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis"):
            raise path_not_found()
        if parts[0] == "api":
            if len(parts) <= 2:
                return self._discovery(request, path)
            if parts[1] != "v1":
                raise path_not_found()
            return "", "v1", parts[2:]
        if len(parts) <= 3:
            return self._discovery(request, path)
        return parts[1], parts[2], parts[3:]

    def _discovery(self, request: web.Request, path: str) -> web.Response:
        host = request.host or ""
        doc = self.discovery.document(path, host)
        if doc is None:
            if path.startswith("/apis/"):
                # a group or version nobody serves: kube-apiserver's mux answers, not its API
                # handlers — a plain-text 404, no Status object
                return web.Response(
                    text="404 page not found\n",
                    status=404,
                    content_type="text/plain",
                    charset="utf-8",
                    headers={"X-Content-Type-Options": "nosniff"},
                )
            raise path_not_found()
        if request.method != "GET":
            raise method_not_allowed()
        return _json(200, doc)

    @staticmethod
    def _verb(ctx: ApiRequest, watch: bool) -> str:
        name = ctx.target.name
        verb = _VERBS.get(ctx.method)
        if verb is None:
            raise method_not_allowed()
        if verb == "get":
            if watch:
                return "watch"
            return "get" if name else "list"
        if verb == "delete" and not name:
            return "deletecollection"
        if verb == "create" and name and not ctx.target.sub:
            raise method_not_allowed()
        if verb in ("update", "patch") and not name:
            raise method_not_allowed()
        return verb

    async def _dispatch(self, ctx: ApiRequest, verb: str) -> tuple[int, Any, str]:
        api, sub = self.api, ctx.target.sub
        if sub in _SUBRESOURCES:
            verbs, fn = _SUBRESOURCES[sub]
            if verb not in verbs:
                raise method_not_allowed()
            status, out = await fn(api, ctx)
            return status, out, JSON
        if sub == "status" and verb not in ("get", "update", "patch"):
            raise method_not_allowed()
        if verb == "get":
            return reads.get(api, ctx)
        if verb == "list":
            return reads.list_(api, ctx)
        if verb == "create" and ctx.rt.plural in REVIEW_KINDS:
            status, out = await reviews.review(api, ctx)
            return status, out, JSON
        write = _WRITES.get(verb)
        if write is None:
            raise method_not_allowed()
        status, out = await write(api, ctx)
        return status, out, JSON


Verb = Callable[[Api, ApiRequest], Awaitable[tuple[int, Any]]]
# Subresources with their own request kinds: the verbs each allows and its handler.
_SUBRESOURCES: dict[str, tuple[tuple[str, ...], Verb]] = {
    "binding": (("create",), subresources.binding),
    "eviction": (("create",), subresources.eviction),
    "token": (("create",), subresources.token),
    "scale": (("get", "update", "patch"), subresources.scale),
    "finalize": (("update",), subresources.finalize),
}
_WRITES: dict[str, Verb] = {
    "create": writes.create,
    "update": writes.update,
    "patch": patches.patch,
    "delete": deletes.delete,
    "deletecollection": deletes.delete_collection,
}


def make_app(
    api: Api, metrics: ApiMetrics, kubelet: KubeletProxy | None = None, usage: MetricsApi | None = None
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY + 1)
    handler = Handler(api, metrics, kubelet or KubeletProxy(api, None), usage)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app
