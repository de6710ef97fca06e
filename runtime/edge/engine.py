"""A two-call Docker Engine probe (GET /version, GET /info) over its socket, without the docker SDK.

Why not the SDK: node registration and `kedge join`'s preflight only need the engine's version and
``LiveRestoreEnabled``; the SDK (requests, urllib3) costs megabytes of RSS in the edge process before
any pod exists. One HTTP/1.1 GET framed by h11 (runtime/edge/http11.py) over asyncio streams, with a
timeout and a bound on the answer's size.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlparse

from runtime.edge import http11
from runtime.errors import Unreachable

DEFAULT_HOST = "unix:///var/run/docker.sock"
MAX_ANSWER = 8 << 20  # bytes; /info is a few KB


async def engine_get(host: str, path: str, timeout: float = 5.0) -> Any:  # noqa: ASYNC109
    """GET ``path`` from the engine at ``host`` (unix:///…, tcp://h:p, http://h:p); JSON body."""
    url = urlparse(host or DEFAULT_HOST)
    try:
        async with asyncio.timeout(timeout):
            if url.scheme == "unix":
                reader, writer = await asyncio.open_unix_connection(url.path)
            elif url.scheme in ("tcp", "http"):
                reader, writer = await asyncio.open_connection(url.hostname, url.port or 2375)
            else:
                raise Unreachable(
                    f"Docker engine {host}: unsupported scheme {url.scheme!r}",
                    hint="use unix:///var/run/docker.sock or tcp://host:port",
                )
            try:
                status, body = await http11.get(
                    reader, writer, path, [("Host", "docker")], body_limit=MAX_ANSWER
                )
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise Unreachable(
            f"Docker engine {host}: {exc or type(exc).__name__}",
            hint="start dockerd, or point runtime.docker_host at it",
        ) from exc
    if status != 200:
        raise Unreachable(f"Docker engine {host}: GET {path} answered {status}: {body[:60]!r}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise Unreachable(f"Docker engine {host}: GET {path} is not JSON") from exc


async def engine_facts(host: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
    """Version, API version and live-restore flag of the engine; raises Unreachable."""
    version = await engine_get(host, "/version", timeout)
    info = await engine_get(host, "/info", timeout)
    return {
        "version": str(version.get("Version", "")),
        "apiVersion": str(version.get("ApiVersion", "")),
        "liveRestore": bool(info.get("LiveRestoreEnabled", False)),
        "root": str(info.get("DockerRootDir", "")),
    }
