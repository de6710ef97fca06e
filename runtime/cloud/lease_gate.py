"""Lease renewals before new work: a gate new sessions and ack-state flushes pass through.

During a connect storm the cloud's CPU goes to TLS handshakes, registrations, resyncs and ack-state
writes; if Lease renewals fall behind by more than the node-lifecycle grace, nodes turn Ready=Unknown.
While the renewal lag exceeds ``threshold`` the gate holds callers (polling, at most ``max_wait`` each,
so an edge's handshake never hangs for good), which leaves the event loop to the lease workers. Edges
retry with backoff anyway. ``delayed``/``waiting`` show in `kedge status`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class LeaseGate:
    """``await gate()`` returns at once while ``lag()`` ≤ ``threshold``, else when it drops or after
    ``max_wait`` seconds."""

    def __init__(
        self, lag: Callable[[], float], *, threshold: float = 10.0, poll: float = 0.5, max_wait: float = 20.0
    ) -> None:
        self.lag, self.threshold, self.poll, self.max_wait = lag, threshold, poll, max_wait
        self.delayed = 0  # callers held at least once, since start
        self.waiting = 0  # callers held right now
        self.held_seconds = 0.0  # total time callers were held

    async def __call__(self) -> float:
        if self.lag() <= self.threshold:
            return 0.0
        self.delayed += 1
        self.waiting += 1
        t0 = time.monotonic()
        try:
            for _ in range(max(1, round(self.max_wait / self.poll))):
                await asyncio.sleep(self.poll)
                if self.lag() <= self.threshold:
                    break
        finally:
            self.waiting -= 1
            waited = time.monotonic() - t0
            self.held_seconds += waited
        return waited
