"""How many pods change their containers at once (issue 22): a bound per pod, not per engine call.

    bound = StartBound(default_parallel())  # PodManager(parallel=...), edge.toml runtime.parallel_pod_starts
    slot = PodSlot(bound)                   # one per pod worker
    await slot.take()                       # before a pass's first create/start/remove; a no-op once held
    slot.away()                             # just before a pull: it waits on a registry, not on this machine
    await slot.call(docker.start(cid))      # an engine call; one slower than `slow` seconds gives it up
    slot.release()                          # the pass is over (PodManager._sync)

Why per pod: N pods whose every engine call queues behind all the others' calls all finish together,
late; a pod that keeps its slot from its first create to its last start finishes as early as the engine
allows, and the next pod takes its place. Steady pods (nothing to change) never take a slot, so their
reconciles and status never wait behind starting ones; neither do pulls (a hanging registry must not
hold a slot) nor graceful stops (they wait on the container's grace period, not on the engine's CPU).
A pod's other containers may retake the slot while one of them pulls; the bound counts pods holding a
slot, so a multi-container pod whose pull ends while another of its containers runs engine work does
not take a second one. An engine call that hangs (a stuck mount, a wedged shim) gives the slot up once
it has taken `slow` seconds: it is not using this machine, and the other pods must not wait for it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def default_parallel(cpus: int | None = None) -> int:
    """Pod starts at once from the CPU count: the engine's work (runc, shims, network setup) is CPU
    bound, so more pods in flight than ~2 per core only interleave them; never fewer than 2, so one
    slow create does not stall the rest."""
    return max(2, min(16, 2 * (cpus or os.cpu_count() or 1)))


class StartBound:
    """At most `limit` pods holding a slot; `busy` and `peak` say how many do and did at once."""

    def __init__(self, limit: int, slow: float = 10.0) -> None:
        if limit < 1:
            raise ValueError(f"parallel pod starts must be >= 1, not {limit}")
        self.limit, self.slow = limit, slow
        self._sem = asyncio.Semaphore(limit)
        self.busy = self.peak = 0

    async def acquire(self) -> None:
        await self._sem.acquire()
        self.busy += 1
        self.peak = max(self.peak, self.busy)

    def release(self) -> None:
        self.busy -= 1
        self._sem.release()


class PodSlot:
    """One pod's claim on the bound: taken lazily, given up for pulls and at the end of each pass."""

    def __init__(self, bound: StartBound) -> None:
        self.bound = bound
        self.held = False
        self._taking = asyncio.Lock()  # the pod's containers start together: one acquire for all

    async def take(self) -> None:
        if self.held:
            return
        async with self._taking:
            if not self.held:
                await self.bound.acquire()
                self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.bound.release()

    away = release  # before a pull: the next create takes it again

    async def call(self, aw: Awaitable[T]) -> T:
        """Await an engine call; past `bound.slow` seconds the slot is given up (the next call of the
        pod takes it again)."""
        task = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({task}, timeout=self.bound.slow)
            if not done:
                self.release()
            return await task
        finally:
            task.cancel()  # a no-op once done; when we are cancelled, so is the call


__all__ = ["PodSlot", "StartBound", "default_parallel"]
