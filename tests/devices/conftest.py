"""Device-plane fixtures: the embedded broker or a whole DevicePlane on a loop of its own thread, so
that tests drive them with real, blocking MQTT clients (paho, mosquitto_pub/sub) like devices do."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config import DmiSection, MqttSection
from runtime.edge.devices.broker import Broker
from runtime.edge.devices.plane import DevicePlane
from tests.devices.mqttclient import MODEL, device
from tests.fixtures.mqtt import mosquitto  # noqa: F401  (re-exported fixture)


class LoopThread:
    """An asyncio loop on a thread: ``call(coro)`` runs a coroutine there and returns its result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def embedded() -> Iterator[tuple[str, int]]:
    """The embedded broker alone on 127.0.0.1:<ephemeral>."""
    lt = LoopThread()
    broker = Broker([("127.0.0.1", 0)])
    lt.call(broker.start())
    try:
        yield broker.addresses[0]
    finally:
        lt.call(broker.stop())
        lt.close()


@pytest.fixture(params=["embedded", "mosquitto"])
def any_broker(request: pytest.FixtureRequest) -> tuple[str, int]:
    """The same conformance checks against kedge's broker and against mosquitto."""
    return request.getfixturevalue("embedded" if request.param == "embedded" else "mosquitto")


class PlaneHandle:
    def __init__(self, plane: DevicePlane, lt: LoopThread, objects: dict[str, list[Any]]) -> None:
        self.plane, self.lt, self.objects = plane, lt, objects

    @property
    def address(self) -> tuple[str, int]:
        assert self.plane.broker is not None
        return self.plane.broker.addresses[0]

    def status(self) -> dict[str, Any]:
        async def get() -> dict[str, Any]:
            return self.plane.status()

        return dict(self.lt.call(get()))


def start_plane(
    db: Path,
    objects: dict[str, list[Any]],
    cfg: MqttSection | None = None,
    hub: Any = None,
    dmi: DmiSection | None = None,
) -> tuple[PlaneHandle, Any]:
    lt = LoopThread()

    async def cached(typ: str) -> list[Any]:
        return list(objects.get(typ, []))

    plane = DevicePlane(
        cfg or MqttSection(port=0, report_window_seconds=0.2), "n1", db, cached=cached, hub=hub, dmi=dmi
    )
    stop_box: list[asyncio.Event] = []
    task_box: list[Any] = []

    async def begin() -> None:
        stop_box.append(asyncio.Event())
        task_box.append(asyncio.ensure_future(plane.run(stop_box[0])))
        await asyncio.wait_for(plane.ready.wait(), 10)

    lt.call(begin())

    def finish() -> None:
        async def end() -> None:
            stop_box[0].set()
            await asyncio.wait_for(task_box[0], 10)

        lt.call(end(), 15)
        lt.close()

    return PlaneHandle(plane, lt, objects), finish


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[PlaneHandle]:
    """A DevicePlane (embedded broker) of node n1 that knows default/thermostat-01 and its model."""
    handle, finish = start_plane(tmp_path / "cache.db", {"device": [device()], "devicemodel": [MODEL]})
    try:
        yield handle
    finally:
        finish()
