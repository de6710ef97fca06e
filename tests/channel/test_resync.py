"""The delivery pieces composed the way the sync controller composes them: ack state fed by the hub's
acks, resync on every connect, a cloud restart with persisted ack state, a new cache epoch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from runtime.cloud.hub.session import SessionInfo
from runtime.protocol.delivery import Acked, AckState, Current, resync_messages
from tests.channel.conftest import Cloud, Edge
from tests.fixtures.wait import eventually_async


class MiniSync:
    """Test-sized sync controller: ``world`` is what each node should have, {uid: Current}."""

    def __init__(self, state: AckState | None = None) -> None:
        self.state = state or AckState()
        self.world: dict[str, dict[str, Current]] = {}
        self.cloud: Cloud | None = None
        self.sent = 0

    async def on_connect(self, info: SessionInfo) -> None:
        assert self.cloud is not None
        if self.state.observe_epoch(info.node, info.epoch):
            self.cloud.hub.downlink(info.node).forget()
        for key, msg in resync_messages(self.world.get(info.node, {}), self.state.for_node(info.node)):
            self.sent += 1
            await self.cloud.hub.send(info.node, msg, reliable_key=key)

    async def on_ack(self, node: str, ev: Acked) -> None:
        self.state.apply(node, ev)


def obj(name: str, uid: str, rv: str) -> Current:
    return Current(
        f"default/pod/{name}",
        rv,
        {"metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}},
    )


async def start(cloud_factory: Callable[..., Any], sync: MiniSync, port: int = 0) -> Cloud:
    cloud: Cloud = await cloud_factory(port=port)
    cloud.hub.subscribe(on_connect=sync.on_connect, on_ack=sync.on_ack)
    sync.cloud = cloud
    return cloud


async def stop_edge(edge: Edge) -> None:
    edge.stop.set()
    await asyncio.wait_for(edge.task, 10)


async def test_resync_only_changes_across_reconnect_restart_and_epoch(
    cloud_factory: Callable[..., Any], edge_factory: Callable[..., Any]
) -> None:
    sync = MiniSync()
    sync.world["n"] = {"u-a": obj("a", "u-a", "1"), "u-b": obj("b", "u-b", "1"), "u-c": obj("c", "u-c", "1")}
    cloud = await start(cloud_factory, sync)
    edge = await edge_factory("n", cloud.address, epoch="e1")
    await eventually_async(lambda: len(sync.state.for_node("n")) == 3, what="first sync acked")
    assert sorted(m.operation for m in edge.received) == ["insert"] * 3
    await stop_edge(edge)

    # While the edge is away: b changes, c is deleted, a is recreated under the same name.
    sync.world["n"] = {"u-a2": obj("a", "u-a2", "7"), "u-b": obj("b", "u-b", "2")}
    edge = await edge_factory("n", cloud.address, epoch="e1")
    await eventually_async(lambda: set(sync.state.for_node("n")) == {"u-a2", "u-b"}, what="resync acked")
    got = [(m.operation, m.resource, m.content["metadata"]["uid"]) for m in edge.received]
    assert got == [
        ("delete", "default/pod/a", "u-a"),
        ("delete", "default/pod/c", "u-c"),
        ("insert", "default/pod/a", "u-a2"),
        ("update", "default/pod/b", "u-b"),
    ]  # deletes first, then by resource: 4 messages, no relist
    await stop_edge(edge)

    # Cloud restart: a new hub with the ack state persisted by the old one → nothing to send.
    port = cloud.hub.bound_port
    await cloud.hub.stop()
    sync2 = MiniSync(AckState.from_dict(sync.state.to_dict()))
    sync2.world = sync.world
    cloud2 = await start(cloud_factory, sync2, port=port)
    edge = await edge_factory("n", cloud2.address, epoch="e1")
    await eventually_async(lambda: cloud2.connects, what="connected to the restarted cloud")
    await asyncio.sleep(0.5)  # the thing under test: nothing is sent for a while
    assert edge.received == [] and sync2.sent == 0
    await stop_edge(edge)

    # A new cache epoch (the edge rebuilt its cache): everything again.
    edge = await edge_factory("n", cloud2.address, epoch="e2")
    await eventually_async(
        lambda: len(edge.received) == 2 and cloud2.hub.pending_acks("n") == 0, what="full resend"
    )
    assert sorted((m.operation, m.resource) for m in edge.received) == [
        ("insert", "default/pod/a"),
        ("insert", "default/pod/b"),
    ]
