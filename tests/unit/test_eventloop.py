"""runtime/eventloop.py: each role names its loop — uvloop for the cloud and the API server, asyncio's
own loop for the edge (tests/edge/test_join.py checks the running edge has no uvloop mapped)."""

from __future__ import annotations

import asyncio

import uvloop

from runtime import eventloop


async def _loop_type() -> type:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop())


def test_uvloop_is_uvloop_and_asyncio_is_asyncios_own_loop() -> None:
    assert issubclass(eventloop.run(_loop_type(), loop="uvloop"), uvloop.Loop)
    got = eventloop.run(_loop_type(), loop="asyncio")
    assert issubclass(got, asyncio.BaseEventLoop) and not issubclass(got, uvloop.Loop)
