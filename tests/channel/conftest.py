"""Channel test fixtures: a recording CloudHub and EdgeHubs dialing it, on uvloop as in production."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
from prometheus_client import CollectorRegistry

from runtime.cloud.hub.server import CloudHub
from runtime.cloud.hub.session import SessionInfo
from runtime.edge.edgehub import EdgeHub
from runtime.protocol import Message
from runtime.protocol.delivery import Acked
from tests.fixtures.edge import recording_edgehub
from tests.fixtures.tlscerts import CertPair, TLSCerts


@pytest.fixture
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """uvloop, as `kedge cloud run` uses (the hub side; `kedge edge run` runs on asyncio's own loop, which
    the other suites use). (pytest-asyncio deprecates this override in
    favour of a global hook, which would switch every other suite's loop too.)"""
    return uvloop.EventLoopPolicy()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/channel/" in item.nodeid:
            item.add_marker(pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy"'))


@dataclass
class Cloud:
    hub: CloudHub
    registry: CollectorRegistry
    messages: list[tuple[str, Message]] = field(default_factory=list)
    connects: list[SessionInfo] = field(default_factory=list)
    disconnects: list[SessionInfo] = field(default_factory=list)
    acks: list[tuple[str, Acked]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.hub.bound_port}"

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def of(self, node: str) -> list[Message]:
        return [m for n, m in self.messages if n == node]


@pytest.fixture
async def cloud_factory(tls_certs: TLSCerts) -> AsyncIterator[Callable[..., Any]]:
    hubs: list[CloudHub] = []

    async def make(**kw: Any) -> Cloud:
        registry = CollectorRegistry()
        holder: list[Cloud] = []

        async def on_message(node: str, msg: Message) -> None:
            holder[0].messages.append((node, msg))

        async def on_connect(info: SessionInfo) -> None:
            holder[0].connects.append(info)

        async def on_disconnect(info: SessionInfo) -> None:
            holder[0].disconnects.append(info)

        async def on_ack(node: str, ev: Acked) -> None:
            holder[0].acks.append((node, ev))

        kw.setdefault("on_message", on_message)
        kw.setdefault("port", 0)
        hub = CloudHub(
            host="127.0.0.1",
            ssl_context=tls_certs.server_context(),
            on_connect=on_connect,
            on_disconnect=on_disconnect,
            on_ack=on_ack,
            registry=registry,
            **kw,
        )
        holder.append(Cloud(hub, registry))
        await hub.start()
        hubs.append(hub)
        return holder[0]

    yield make
    for h in hubs:
        await h.stop()


@pytest.fixture
async def cloud(cloud_factory: Callable[..., Any]) -> Cloud:
    c: Cloud = await cloud_factory(resend_after=0.3, keepalive_timeout=2.0)
    return c


@dataclass
class Edge:
    hub: EdgeHub
    stop: asyncio.Event
    task: asyncio.Task[None]
    received: list[Message] = field(default_factory=list)
    auto_ack: bool = True


@pytest.fixture
async def edge_factory(tls_certs: TLSCerts, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    edges: list[Edge] = []

    async def make(
        node: str,
        server: str,
        *,
        pair: CertPair | None = None,
        auto_ack: bool = True,
        outbox: Path | None = None,
        **kw: Any,
    ) -> Edge:
        pair = pair or tls_certs.client(node)
        holder: list[Edge] = []
        hub = recording_edgehub(
            server,
            node,
            lambda: holder[0],
            outbox_path=outbox or tmp_path / f"{node}-{len(edges)}-outbox.db",
            ssl_context=tls_certs.client_context(pair),
            **kw,
        )
        stop = asyncio.Event()
        edge = Edge(hub, stop, asyncio.create_task(hub.run(stop)), auto_ack=auto_ack)
        holder.append(edge)
        edges.append(edge)
        return edge

    yield make
    for e in edges:
        e.stop.set()
    for e in edges:
        try:
            await asyncio.wait_for(e.task, 10)
        except Exception:
            e.task.cancel()
