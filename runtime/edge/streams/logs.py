"""``kubectl logs`` on the edge: the container's log from the Docker engine, with kubelet's options.

Options (kubelet's PodLogOptions, as the stream endpoint passes them): follow, tailLines, sinceSeconds,
sinceTime (RFC 3339), timestamps, previous, limitBytes. Docker's own ``since``/``tail``/``timestamps``
do the selecting (its timestamps are RFC 3339 with nanoseconds, as kubelet's); ``limitBytes`` is cut
here. The engine's stream is read on a thread of its own (pump.py) and closed when the session ends.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.streams.containers import SessionError, container_for
from runtime.edge.streams.pump import pumped
from runtime.protocol.tunnel import OpenRequest


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
    kw: dict[str, Any] = dict(
        stdout=True, stderr=True, stream=True, follow=_truthy(opts.get("follow")),
        timestamps=_truthy(opts.get("timestamps")), tail=_tail(opts),
    )  # fmt: skip
    since = _since(opts)
    if since is not None:
        kw["since"] = since
    limit = int(opts["limitBytes"]) if str(opts.get("limitBytes") or "").isdigit() else None
    stream = await docker.call(lambda api: api.logs(info["Id"], **kw))
    return _limited(pumped(lambda: stream, stream.close, name="logs"), limit)


async def _limited(chunks: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in chunks:
        if limit is not None and sent + len(chunk) >= limit:
            yield chunk[: limit - sent]
            return
        sent += len(chunk)
        yield chunk
