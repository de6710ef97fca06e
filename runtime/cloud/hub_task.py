"""The CloudHub as a root task of `kedge cloud run` (run.EXTRA_TASKS entry
``runtime.cloud.hub_task:serve``), and how controllers in the same process find it.

A controller task does::

    hub = await hub_task.hub_for(ctx)
    hub.subscribe(on_message=..., on_connect=..., on_disconnect=..., on_ack=...)

Hubs are looked up by their CloudContext, never through a process-wide default, so several clouds can
run in one process (tests, `kedge init --embedded`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from runtime.cloud.hub import CloudHub

if TYPE_CHECKING:
    from runtime.cloud.run import CloudContext

_hubs: dict[int, CloudHub] = {}  # id(ctx) -> its hub, while serve(ctx) runs
_waiters: dict[int, asyncio.Event] = {}


def _event(ctx: CloudContext) -> asyncio.Event:
    return _waiters.setdefault(id(ctx), asyncio.Event())


async def serve(ctx: CloudContext) -> None:
    """Run the hub on ``[hub] bind:websocket_port`` until cancelled; publishes "hub" in addresses and
    a "cloudhub" readiness check."""
    hub = CloudHub.from_config(ctx.cfg.hub, ssl_context=ctx.hub_ssl, registry=ctx.registry)
    await hub.start()
    key = id(ctx)
    _hubs[key] = hub
    _event(ctx).set()
    ctx.addresses["hub"] = f"{ctx.cfg.hub.bind}:{hub.bound_port}"
    ctx.ready_checks["cloudhub"] = lambda: True
    _republish(ctx)
    try:
        await asyncio.Event().wait()
    finally:
        ctx.ready_checks["cloudhub"] = lambda: False
        _hubs.pop(key, None)
        _waiters.pop(key, None)
        await hub.stop()


def _republish(ctx: CloudContext) -> None:
    """run.py writes addresses.json once health and bootstrap listen; if that happened before the hub
    bound (port 0), write it again so `kedge init` reads the hub's real port."""
    from runtime.cloud import run

    state = getattr(getattr(ctx, "paths", None), "state", None)
    if state is not None and (state / "addresses.json").exists():
        run._write_addresses(ctx)


async def hub_for(ctx: CloudContext, wait: float = 30.0) -> CloudHub:
    """The hub serving ``ctx``, waiting up to ``wait`` seconds for ``serve`` to start it."""
    if id(ctx) not in _hubs:
        await asyncio.wait_for(_event(ctx).wait(), wait)
    return _hubs[id(ctx)]
