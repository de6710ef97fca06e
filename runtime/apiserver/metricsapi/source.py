"""UsageSource: the edges' resource usage, read from the cloud's status socket.

Why the socket: in `kedge init --embedded` the API server and `kedge cloud run` are two processes under
one root; the cloud holds the edges' reports in memory (runtime/cloud/usage/), and its 0600 unix
socket is already how local tools ask it things — no port, no credentials. A cloud that is not
running (yet) is no error: there is simply no usage, and kubectl says "metrics not available yet".
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("kedge.apiserver.metrics")
FRESH = 1.0  # seconds a read is reused: `kubectl top` asks for nodes, then for pods


class UsageSource:
    def __init__(self, socket: Path | str, timeout: float = 3.0) -> None:
        self.socket, self.timeout = Path(socket), timeout
        self._cache: tuple[float, list[dict[str, Any]]] | None = None
        self._failing = ""

    async def summaries(self) -> list[dict[str, Any]]:
        """Every reporting node's kubelet Summary ([] when the cloud does not answer)."""
        now = time.monotonic()
        if self._cache is not None and now - self._cache[0] < FRESH:
            return self._cache[1]
        items = await self._read()
        self._cache = (now, items)
        return items

    async def _read(self) -> list[dict[str, Any]]:
        import aiohttp

        try:
            async with (
                aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.socket))) as session,
                session.get("http://cloud/usage", timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp,
            ):
                resp.raise_for_status()
                body = await resp.json()
        except (TimeoutError, OSError, aiohttp.ClientError, ValueError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            if why != self._failing:  # said once per kind, not per request
                log.info("resource usage: the cloud's socket %s does not answer (%s)", self.socket, why)
            self._failing = why
            return []
        self._failing = ""
        items = body.get("items") if isinstance(body, dict) else None
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
