"""`?watch=1`: a chunked stream of JSON watch events, resumable from a resourceVersion.

One writer per watch drains its watcher's buffered frames with a single write, so a burst of events
costs one syscall per watcher, not one per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from runtime.apiserver.api import Api
from runtime.apiserver.handlers import semantics
from runtime.apiserver.handlers.reads import as_read, matcher, reshapes, view_of
from runtime.apiserver.http.context import ApiRequest
from runtime.apiserver.http.status_errors import bad_request, gone
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.registry.storage import MAX_BUFFERED, Watcher, as_chunk

Obj = dict[str, Any]
DEFAULT_TIMEOUT = 1800.0


def _next_bookmark(now: float, deadline: float, every: float) -> float:
    """Like the watch cache: roughly every `every` seconds, and once 2 s before the watch times out."""
    nxt = now + every
    pre = deadline - 2.0
    if pre < nxt:
        nxt = pre if pre > now else float("inf")
    return nxt


def _bookmark(ctx: ApiRequest, rv: int, initial_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": ctx.rt.kind, "apiVersion": ctx.rt.api_version, "metadata": meta}
    return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"


@dataclass
class _Options:
    """The watch's query: timeoutSeconds, allowWatchBookmarks, sendInitialEvents and the view asked."""

    timeout: float
    bookmarks: bool
    send_initial: bool
    rv: str
    version: str  # the Table's meta.k8s.io version
    table: bool
    convert: bool

    @classmethod
    def of(cls, ctx: ApiRequest) -> _Options:
        q = ctx.query
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else DEFAULT_TIMEOUT
        except ValueError as exc:
            raise bad_request("timeoutSeconds must be an integer") from exc
        as_, v = view_of(str(ctx.headers.get("Accept", "")))
        return cls(
            timeout=timeout,
            bookmarks=q.get("allowWatchBookmarks") in ("true", "1"),
            send_initial=q.get("sendInitialEvents") == "true",
            rv=q.get("resourceVersion", ""),
            version=v,
            table=as_ == "Table",
            convert=reshapes(ctx.rt),
        )

    def render(self, data: bytes, rt: ResourceType) -> bytes:
        return _render(data, rt, self.version, self.table, self.convert)


@dataclass
class _Start:
    """Where the watch starts: after `after`, with the ADDED events of a fresh list (`initial`), or by
    replaying buffered events; `expired` when the resourceVersion asked for is compacted away."""

    after: int
    initial: list[bytes]
    replay: bool
    expired: str | None = None


def _start(api: Api, ctx: ApiRequest, opts: _Options, match: Any) -> _Start:
    store, rt = api.store, ctx.rt
    if opts.rv in ("", "0") or opts.send_initial:
        after = store.rv
        initial = [
            b'{"type":"ADDED","object":' + e.raw + b"}\n"
            for _, e in store.items(rt.key, ctx.target.namespace)
            if (ctx.target.name is None or e.fields["metadata"]["name"] == ctx.target.name)
            and (match is None or match(e))
        ]
        return _Start(after, initial, replay=False)
    try:
        after = int(opts.rv)
    except ValueError as exc:
        raise bad_request(f'resourceVersion: Invalid value: "{opts.rv}": must be an integer') from exc
    expired = f"too old resource version: {after} ({store.floor})" if after < store.floor else None
    return _Start(after, [], replay=True, expired=expired)


def _write_directly(w: Watcher, request: web.Request) -> None:
    """Plain JSON watches skip the loop: the store writes their frames straight to the transport."""
    transport = request.transport
    assert transport is not None

    def sink(data: bytes) -> bool:
        if transport.is_closing():
            return False
        transport.write(data)
        return transport.get_write_buffer_size() < MAX_BUFFERED

    pending = w.take()
    if pending and not sink(as_chunk(pending)):
        w.close()
    w.sink = sink


async def _error_event(resp: web.StreamResponse, message: str) -> None:
    await resp.write(orjson.dumps({"type": "ERROR", "object": gone(message).body()}) + b"\n")


async def serve_watch(api: Api, ctx: ApiRequest, request: web.Request) -> web.StreamResponse:
    store, rt = api.store, ctx.rt
    match = matcher(ctx)
    opts = _Options.of(ctx)
    start = _start(api, ctx, opts, match)
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if start.expired is not None:
        await _error_event(resp, start.expired)
        return resp
    w = Watcher(rt.key, ctx.target.namespace, ctx.target.name, match, start.after)
    store.subscribe(w)
    try:
        if start.replay:
            store.replay(w)
        if start.initial:
            await resp.write(opts.render(b"".join(start.initial), rt))
        if opts.send_initial and opts.bookmarks:
            await resp.write(_bookmark(ctx, start.after, initial_end=True))
        if not opts.table and not opts.convert and request.transport is not None:
            _write_directly(w, request)
        await _pump(api, ctx, resp, w, opts)
        w.sink = None
        if w.overflow:
            await _error_event(resp, "watch consumer too slow; events dropped")
    except ConnectionResetError:  # the client went away: nothing left to tell it
        store.unsubscribe(w)
        return resp
    finally:
        store.unsubscribe(w)
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await resp.write_eof()
    return resp


async def _pump(api: Api, ctx: ApiRequest, resp: web.StreamResponse, w: Watcher, opts: _Options) -> None:
    """Until the timeout or the watcher closes: write buffered frames, and bookmarks when asked for."""
    deadline = time.monotonic() + opts.timeout
    next_bookmark = _next_bookmark(time.monotonic(), deadline, api.bookmark_interval)
    while not w.closed:
        now = time.monotonic()
        if now >= deadline:
            break
        wait_for = min(deadline, next_bookmark if opts.bookmarks else deadline) - now
        if not w.frames:
            w.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(w.wake.wait(), timeout=max(0.0, wait_for))
        if w.frames:
            await resp.write(opts.render(w.take(), ctx.rt))
        if opts.bookmarks and time.monotonic() >= next_bookmark and not w.closed:
            mark = _bookmark(ctx, max(api.store.emitted_rv, w.last_rv))
            if w.sink is not None:
                w.sink(as_chunk(mark))
            else:
                await resp.write(mark)
            next_bookmark = _next_bookmark(time.monotonic(), deadline, api.bookmark_interval)


def _render(data: bytes, rt: ResourceType, v: str, table: bool, convert: bool) -> bytes:
    if not table and not convert:
        return data
    out = []
    for line in data.splitlines():
        ev = orjson.loads(line)
        if convert and ev["object"].get("kind") != "Status":
            as_read(rt, ev["object"])
        if not table:
            out.append(orjson.dumps(ev))
            continue
        tab = semantics.to_table(rt.plural, [ev["object"]], rt.printer_columns)
        tab["apiVersion"] = f"meta.k8s.io/{v}"
        tab.setdefault("metadata", {})["resourceVersion"] = (
            ev["object"].get("metadata", {}).get("resourceVersion", "")
        )
        out.append(orjson.dumps({"type": ev["type"], "object": tab}))
    return b"\n".join(out) + b"\n"
