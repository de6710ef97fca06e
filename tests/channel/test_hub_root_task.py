"""The hub as a `kedge cloud run` root task: started from a CloudContext, address and readiness published."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import CollectorRegistry

from runtime.cloud.cloudcore import serve_hub
from runtime.cloud.context import CloudContext
from runtime.cloud.hub.server import CloudHub
from runtime.cloud.hub.session import SessionInfo
from runtime.config import CloudConfig
from runtime.protocol import new_message
from runtime.protocol.message import Message
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async


async def test_serve_and_subscribe(tls_certs: TLSCerts, edge_factory: Callable[..., Any]) -> None:
    cfg = CloudConfig()
    cfg.hub.bind, cfg.hub.websocket_port = "127.0.0.1", 0
    none = cast(Any, None)
    ctx = CloudContext(cfg, none, none, none, tls_certs.authority, CollectorRegistry())
    ctx.hub_ssl = tls_certs.server_context()
    hub = CloudHub.from_config(cfg.hub, ssl_context=ctx.hub_ssl, registry=ctx.registry)
    started = asyncio.Event()
    task = asyncio.create_task(serve_hub(ctx, hub, started))
    await asyncio.wait_for(started.wait(), 5)
    assert ctx.ready()["cloudhub"]
    host, _, port = ctx.addresses["hub"].rpartition(":")
    assert host == "127.0.0.1" and int(port) == hub.bound_port
    got: list[tuple[str, Message]] = []
    connected: list[SessionInfo] = []

    async def on_message(node: str, msg: Message) -> None:
        got.append((node, msg))

    async def on_connect(info: SessionInfo) -> None:
        connected.append(info)

    unsubscribe = hub.subscribe(on_message=on_message, on_connect=on_connect)
    edge = await edge_factory("ctl", ctx.addresses["hub"])
    await eventually_async(lambda: connected, what="on_connect")
    await edge.hub.send(new_message("edged", "meta", "query", "default/configmap/c"))
    await eventually_async(lambda: got, what="message to subscriber")
    assert got[0] == ("ctl", got[0][1]) and got[0][1].resource == "node/ctl/default/configmap/c"
    unsubscribe()
    await edge.hub.send(new_message("edged", "meta", "query", "default/configmap/d"))
    await asyncio.sleep(0.3)  # the thing under test: nothing reaches the unsubscribed handler
    assert len(got) == 1
    assert ctx.registry.get_sample_value("kedge_cloudhub_connected_edges") == 1  # the cloud's registry
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not ctx.ready()["cloudhub"]
    await eventually_async(lambda: not edge.hub.status()["connected"], what="edge sees the hub gone")
