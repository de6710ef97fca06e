"""A blocking producer on a thread of its own, its items handed to the event loop with backpressure.

The docker SDK's log and exec streams block in ``recv``; each session's reader gets its own thread (a
follow of a silent container would hold a pool thread for hours) and puts what it reads into a small
queue; when the queue is full the thread waits, so a slow client slows the read from the engine
instead of growing memory. Leaving the ``async for`` (the client went away) sets ``stopped`` and calls
``cancel`` (the stream's close: its socket is shut down, the blocked ``recv`` returns)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

DEPTH = 8
T = TypeVar("T")


async def pumped(
    produce: Callable[[], Iterable[T]],
    cancel: Callable[[], None],
    depth: int = DEPTH,
    name: str = "stream",
) -> AsyncIterator[T]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[T | BaseException | None] = asyncio.Queue(depth)
    stopped = threading.Event()

    def put(item: T | BaseException | None) -> bool:
        if stopped.is_set():
            return False
        fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while True:
            try:
                fut.result(0.5)
                return True
            except concurrent.futures.TimeoutError:
                if stopped.is_set():
                    fut.cancel()
                    return False
            except (concurrent.futures.CancelledError, RuntimeError):
                return False

    def run() -> None:
        try:
            for chunk in produce():
                if chunk and not put(chunk):
                    return
            put(None)
        except BaseException as exc:  # handed to the loop, raised there
            put(exc)

    threading.Thread(target=run, name=f"kedge-{name}", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stopped.set()
        cancel()
