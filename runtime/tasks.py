"""Running a component's tasks side by side: the first to fail ends them all (style.md "root tasks").

    supervise(tasks, until=FIRST_EXCEPTION)   wait; re-raise the failure that ended the group;
                                              on the way out every task is cancelled and awaited
    cancel_all(tasks)                         cancel and await (their errors are theirs, not ours)

Used by the cloud's controllers (edge controller, Device controller, CloudControllers) for their
watches, flushers and workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Future[Any]]) -> None:
    pending = list(tasks)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def supervise(tasks: Iterable[asyncio.Future[Any]], *, until: str = asyncio.FIRST_EXCEPTION) -> None:
    """Wait for the group (``until``: FIRST_EXCEPTION, or FIRST_COMPLETED when any task ending is an
    end); a failure among the finished tasks is re-raised. The others are cancelled either way."""
    group = list(tasks)
    try:
        done, _ = await asyncio.wait(group, return_when=until)
        for t in done:
            t.result()
    finally:
        await cancel_all(group)
