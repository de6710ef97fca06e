"""``kubectl logs`` on the edge: the container's log from the Docker engine, with kubelet's options.

Options (kubelet's PodLogOptions, as the stream endpoint passes them): follow, tailLines, sinceSeconds,
sinceTime (RFC 3339), timestamps, previous, limitBytes. Docker's own ``since``/``tail``/``timestamps``
do the selecting (its timestamps are RFC 3339 with nanoseconds, as kubelet's); ``limitBytes`` is cut
here. A follow of a json-file log this process can read is served from the file itself (logfile.py,
the same options; it spares the engine a decode and a flushed write per line); otherwise the
engine's stream is read on a thread of its own (pump.py) in large blocks, decoded a block at a time
(bulk.py), and closed when the session ends. At most DEPTH bytes wait for the tunnel: a client
that stops reading stops the read from the engine (a few MB held here, whatever the container prints).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.streams import logfile
from runtime.edge.streams.bulk import dechunked, demux, raw_blocks
from runtime.edge.streams.containers import SessionError, container_for
from runtime.edge.streams.pump import pumped
from runtime.protocol.tunnel import OpenRequest

DEPTH = 4 << 20  # bytes read from the engine and not yet sent into the tunnel, per session (+ a block)
LINGER = 0.01  # seconds a batch gathers before it leaves (fewer, larger tunnel messages)


def _since(opts: dict[str, Any]) -> float | None:
    if opts.get("sinceSeconds") not in (None, ""):
        try:
            return time.time() - int(opts["sinceSeconds"])
        except (TypeError, ValueError):
            raise SessionError(400, f"sinceSeconds {opts['sinceSeconds']!r} is not a number") from None
    if opts.get("sinceTime"):
        text = str(opts["sinceTime"]).replace("Z", "+00:00")
        try:
            return dt.datetime.fromisoformat(text).timestamp()
        except ValueError:
            raise SessionError(400, f"sinceTime {opts['sinceTime']!r} is not RFC 3339") from None
    return None


def _tail(opts: dict[str, Any]) -> int | str:
    if opts.get("tailLines") in (None, ""):
        return "all"
    try:
        return max(0, int(opts["tailLines"]))
    except (TypeError, ValueError):
        raise SessionError(400, f"tailLines {opts['tailLines']!r} is not a number") from None


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


async def open_log(docker: DockerAdapter, node: str, req: OpenRequest) -> AsyncIterator[bytes]:
    """The log's bytes; SessionError (before the session is ``ready``) when there is nothing to serve."""
    opts = req.options
    info = await container_for(docker, node, req, previous=_truthy(opts.get("previous")))
    flags = {k: int(_truthy(opts.get(k))) for k in ("follow", "timestamps")}
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "tail": _tail(opts), **flags}
    since = _since(opts)
    if since is not None:
        params["since"] = f"{since:.9f}"
    limit = int(opts["limitBytes"]) if str(opts.get("limitBytes") or "").isdigit() else None
    inspect = (await docker.inspect(info["Id"])) or {}
    if flags["follow"] and logfile.usable(inspect):
        stop = threading.Event()
        tail = None if params["tail"] == "all" else int(params["tail"])
        follow = functools.partial(
            logfile.follow, inspect, tail=tail, since=since, timestamps=bool(flags["timestamps"]), stop=stop
        )
        return _limited(_pumped(follow, stop.set), limit)
    tty = bool(inspect.get("Config", {}).get("Tty"))
    from docker.types.daemon import CancellableStream  # the SDK only once a session needs it

    stream = await docker.call(lambda api: _log_request(api, info["Id"], params))
    blocks = raw_blocks(stream) if stream.raw.chunked else None
    body = dechunked(blocks) if blocks is not None else stream.iter_content(chunk_size=None)
    produce = (lambda: body) if tty else (lambda: demux(body))
    return _limited(_pumped(produce, CancellableStream(body, stream).close), limit)


def _pumped(produce: Callable[[], Iterable[bytes]], cancel: Callable[[], None]) -> AsyncIterator[bytes]:
    return pumped(produce, cancel, join=b"".join, depth=DEPTH, weigh=len, linger=LINGER, name="logs")


def _log_request(api: Any, cid: str, params: dict[str, Any]) -> Any:
    """GET /containers/{id}/logs through the SDK's session, the body left unread (bulk.py reads it:
    the SDK's own ``logs(stream=True)`` takes it a frame at a time through urllib3)."""
    res = api._get(api._url("/containers/{0}/logs", cid), params=params, stream=True)
    api._raise_for_status(res)
    return res


async def _limited(chunks: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in chunks:
        if limit is not None and sent + len(chunk) >= limit:
            yield chunk[: limit - sent]
            return
        sent += len(chunk)
        yield chunk
