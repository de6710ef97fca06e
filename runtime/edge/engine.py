"""A two-call Docker Engine probe (GET /version, GET /info) over its socket, without the docker SDK.

Why not the SDK: node registration and `kedge join`'s preflight only need the engine's version and
``LiveRestoreEnabled``; the SDK (requests, urllib3) costs megabytes of RSS in the edge process before
any pod exists. One HTTP/1.1 GET framed by h11 (runtime/edge/http11.py) over asyncio streams, with a
timeout and a bound on the answer's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from runtime.edge import http11
from runtime.errors import Unreachable

log = logging.getLogger("kedge.edge")
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
            f"Docker engine {host}: {str(exc) or type(exc).__name__}",
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


class EngineWatch:
    """The container runtime's health as kubelet checks it (its CRI Status, every few seconds): GET
    /version every ``every`` s. ``down`` says why it is not answering ("" while it is); a refused or
    missing socket counts at once, timeouts (a busy engine, ≈ 30 s by default) only ``patience`` in a
    row, so a loaded engine does not flap the node NotReady. ``on_change``
    is called when ``down`` flips, so the node status goes out now, not at its next period."""

    def __init__(
        self,
        host: str,
        on_change: Callable[[], None] = lambda: None,
        *,
        every: float = 2.0,
        patience: int = 6,
    ) -> None:
        self.host, self.on_change, self.every, self.patience = host, on_change, every, patience
        self.down = ""
        self.version = ""
        self._timeouts = 0

    async def probe(self) -> None:
        was = self.down
        try:
            version = await engine_get(self.host, "/version", timeout=self.every * 1.5)
        except Unreachable as exc:
            self._timeouts = self._timeouts + 1 if isinstance(exc.__cause__, TimeoutError) else self.patience
            if self._timeouts >= self.patience:
                self.down = str(exc)
        else:
            self._timeouts = 0
            self.down = ""
            self.version = f"docker://{version.get('Version', 'unknown')}"
        if bool(was) != bool(self.down):
            if self.down:
                log.warning("container runtime is down: %s", self.down)
            else:
                log.info("container runtime is answering again (%s)", self.version)
            self.on_change()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.probe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
