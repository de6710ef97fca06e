"""Is the cloud answering? A KubeEdge cloudcore that refused a session after the websocket upgrade
(node certificate chain, headers) keeps the connection open and answers none of our requests.

``AnswerWatch`` notes when a request went out with none answered since, and ``watch`` closes a link on
which requests have gone unanswered for ``within`` seconds, so EdgeHub redials instead of calling a
silent link connected. The reason is handed to ``on_drop`` before the link is closed (EdgeHub shows it
in its status until an answer comes). A kedge cloud refuses at the upgrade with an HTTP status, and a
slow answer from it means a slow API server, which redialling would not cure — so EdgeHub watches
KubeEdge peers only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

log = logging.getLogger("kedge.edgehub")


class AnswerWatch:
    def __init__(self, within: float) -> None:
        self.within = within
        self.since: float | None = None  # monotonic: the first request since the last answer
        self.drops = 0  # links closed for silence since the last answer

    def asked(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def connected(self, pending: bool) -> None:
        """A new link: requests still waiting count from now."""
        self.since = time.monotonic() if pending else None

    def answered(self) -> bool:
        """An answer came; True when it ends a run of drops (their reason may go)."""
        self.since = None
        ended, self.drops = self.drops > 0, 0
        return ended

    async def watch(self, ws: ClientConnection, url: str, on_drop: Callable[[str], None]) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.within / 4))
            if self.since is None or time.monotonic() - self.since < self.within:
                continue
            self.drops += 1
            self.since = None
            reason = (
                f"cloud {url} took the session but answered no request for {self.within:g}s "
                f"(dropped and redialled, {self.drops} time(s)); a KubeEdge cloudcore does so "
                "when it refused the session after the upgrade (node certificate chain, headers)"
            )
            on_drop(reason)
            log.warning("%s", reason)
            await ws.close(1000, "requests unanswered")
            return
