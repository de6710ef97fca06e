"""A blocking producer on a thread of its own, its items handed to the event loop in batches, with
backpressure.

The docker SDK's log and exec streams block in ``recv``; each session's reader gets its own thread (a
follow of a silent container would hold a pool thread for hours). Docker's log stream is one small
item per line, so the hand-over is batched: the thread appends to a shared list and wakes the loop
only when the list was empty — one wake-up per batch, however many lines it holds — and waits while
the pending items weigh ``depth`` or more (``weigh``: 1 an item, or e.g. ``len``), so a slow client
slows the read from the engine instead of growing memory. With ``join`` the consumer gets each batch
as one item; with ``linger`` the loop lets a batch gather that long after its first item (fewer,
larger messages downstream for a fast stream; the thread keeps reading meanwhile). Leaving the
``async for`` (the client went away) sets ``stopped`` and calls ``cancel`` (the stream's close: its
socket is shut down, the blocked ``recv`` returns)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

DEPTH = 4096
T = TypeVar("T")
_END = object()


class _Batches:
    """The thread's items, waiting for the loop; ``put`` blocks while they weigh ``depth`` or more."""

    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int, weigh: Callable[[Any], int]) -> None:
        self.loop, self.depth, self.weigh = loop, depth, weigh
        self.cond = threading.Condition()
        self.pending: list[Any] = []
        self.weight = 0
        self.wake = asyncio.Event()
        self.stopped = False

    def put(self, item: object, *, last: bool = False) -> bool:
        with self.cond:
            while self.weight >= self.depth and not self.stopped and not last:
                self.cond.wait(0.5)
            if self.stopped:
                return False
            first = not self.pending
            self.pending.append(item)
            self.weight += 0 if last else self.weigh(item)
        if first:
            try:
                self.loop.call_soon_threadsafe(self.wake.set)
            except RuntimeError:  # the loop is closed
                return False
        return True

    def take(self) -> list[Any]:
        with self.cond:
            items, self.pending, self.weight = self.pending, [], 0
            self.wake.clear()
            self.cond.notify_all()
        return items

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def run(self, produce: Callable[[], Iterable[Any]]) -> None:
        try:
            for chunk in produce():
                if chunk and not self.put(chunk):
                    return
            self.put(_END, last=True)
        except BaseException as exc:  # handed to the loop, raised there
            self.put(exc, last=True)


async def pumped(
    produce: Callable[[], Iterable[T]],
    cancel: Callable[[], None],
    *,
    join: Callable[[list[T]], T] | None = None,
    depth: int = DEPTH,
    weigh: Callable[[T], int] = lambda _: 1,
    linger: float = 0.0,
    name: str = "stream",
) -> AsyncIterator[T]:
    batches = _Batches(asyncio.get_running_loop(), depth, weigh)
    threading.Thread(target=batches.run, args=(produce,), name=f"kedge-{name}", daemon=True).start()
    try:
        while True:
            await batches.wake.wait()
            if linger:
                await asyncio.sleep(linger)
            items = batches.take()
            end = next((i for i in items if i is _END or isinstance(i, BaseException)), None)
            data: list[T] = [i for i in items if i is not _END and not isinstance(i, BaseException)]
            if data and join is not None:
                yield join(data)
            else:
                for item in data:
                    yield item
            if isinstance(end, BaseException):
                raise end
            if end is _END:
                return
    finally:
        batches.stop()
        cancel()
