"""Scenario 5: broker faults under a joined edge, with a device reporting over MQTT (paho, QoS 1) and
DeviceStatus read back with kubectl. A value counts as acknowledged when the edge answered it on the
device's `twin/update/result` topic; lost = acknowledged values newer than what DeviceStatus shows
after convergence.

1. External broker: `kedge join --mqtt external=mqtt://…` against a real mosquitto, SIGKILLed after
   some acknowledged reports and started again on the same port → the edge and the device reconnect,
   traffic resumes, the last acknowledged value reaches DeviceStatus.
2. Edge runtime SIGKILLed right after a value was acknowledged (the uplink may not have sent it yet),
   started again → that value reaches DeviceStatus with no further report, traffic resumes.
(The embedded broker's own task crashed by injection: tests/devices/test_broker_crash.py.)

    pytest tests/e2e/faults/test_broker_faults.py -s
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.test_devices import Device, apply, thermostat
from tests.fixtures import find_binary, require
from tests.fixtures.e2e import E2E, free_port, reported, start_e2e
from tests.fixtures.mqtt import _accepts, mosquitto_config
from tests.fixtures.procs import start, stop
from tests.fixtures.wait import eventually


class Sensor(Device):
    """A Device that subscribes again whenever it (re)connects: a restarted broker forgot it."""

    def __init__(self, port: int, device_id: str) -> None:
        super().__init__(port, device_id)
        self.client.reconnect_delay_set(1, 2)
        result = f"{self.prefix}/twin/update/result"
        self.client.on_connect = lambda *_: self.client.subscribe([(result, 1)])
        self.subscribe(result)

    def acknowledged(self, value: str, timeout: float = 5.0) -> bool:
        """Report `value`; True when the edge answered it within `timeout`."""
        try:
            event = self.report(temperature=value)
            body = self.wait(
                f"{self.prefix}/twin/update/result", timeout, lambda b: b.get("event_id") == event
            )
        except (RuntimeError, ValueError, pytest.fail.Exception):
            return False
        return str(body["twin"]["temperature"]["actual"]["value"]) == value


class Mosquitto:
    """mosquitto on one port across restarts."""

    def __init__(self, tmp: Path) -> None:
        require("mosquitto")
        self.tmp, self.port, self.proc = tmp, free_port(), None
        self.binary = find_binary("mosquitto") or "mosquitto"
        (tmp / "mosquitto.conf").write_text(mosquitto_config(self.port))

    def start(self) -> None:
        log = self.tmp / "mosquitto.log"
        self.proc = start([self.binary, "-c", str(self.tmp / "mosquitto.conf")], log)
        eventually(
            functools.partial(_accepts, "127.0.0.1", self.port), 10, "mosquitto", proc=self.proc, log=log
        )

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


def joined(tmp: Path, *mqtt: str) -> tuple[E2E, Any]:
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    e, teardown = start_e2e(tmp, client, ("--mqtt", *mqtt))
    return e, lambda: (teardown(), client.close())


def figures(e: E2E, name: str, scenario: str, acked: list[str], t0: float, **extra: Any) -> dict[str, Any]:
    """Wait for the last acknowledged value in DeviceStatus; the scenario's JSON line."""
    with_last = False
    try:
        eventually(lambda: reported(e, name, "temperature") == acked[-1], 90, "the last acknowledged value")
        with_last = True
    except AssertionError:
        pass
    shown = reported(e, name, "temperature")
    lost = len(acked) - 1 - acked.index(shown) if shown in acked else len(acked)
    line = {
        "scenario": scenario,
        "acknowledged": len(acked),
        "lost_twin_values": 0 if with_last else lost,
        "lost_api_updates": None,  # no API change in this scenario
        "restarts_of_healthy_containers": None,  # no pod
        "converge_seconds": round(time.monotonic() - t0, 1),
        **extra,
    }
    print(json.dumps(line, sort_keys=True), flush=True)
    return line


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path)
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.mark.broker
@pytest.mark.timeout(300)
def test_external_broker_killed_and_restarted_loses_no_acknowledged_value(
    tmp_path: Path, broker: Mosquitto
) -> None:
    e, teardown = joined(tmp_path, f"external=mqtt://127.0.0.1:{broker.port}")
    try:
        apply(e, *thermostat(e.edge.node, name="thermo-ext"))
        eventually(lambda: e.cloud.get("devicestatuses", "thermo-ext"), 30, "DeviceStatus")
        dev = Sensor(broker.port, "default/thermo-ext")
        try:
            acked: list[str] = []
            eventually(lambda: dev.acknowledged("10"), 30, "the edge answering on the external broker")
            acked.append("10")
            acked += [v for v in ("11", "12", "13") if dev.acknowledged(v)]
            broker.kill9()
            t0 = time.monotonic()
            time.sleep(2)  # down for a moment: the edge and the device notice
            broker.start()
            eventually(lambda: dev.acknowledged("14"), 60, "twin traffic through the restarted broker")
            back = time.monotonic() - t0
            acked.append("14")
            acked += [v for v in ("15", "16") if dev.acknowledged(v)]
            f = figures(
                e, "thermo-ext", "external-broker-kill9", acked, t0, traffic_back_seconds=round(back, 1)
            )
        finally:
            dev.close()
        assert f["acknowledged"] == 7 and f["lost_twin_values"] == 0, f
    finally:
        teardown()


@pytest.mark.timeout(300)
def test_edge_killed_right_after_an_acknowledged_value_loses_none(tmp_path: Path) -> None:
    port = free_port()
    e, teardown = joined(tmp_path, "embedded", "--set", f"mqtt.port={port}")
    try:
        apply(e, *thermostat(e.edge.node, name="thermo-kill"))
        eventually(lambda: e.cloud.get("devicestatuses", "thermo-kill"), 30, "DeviceStatus")
        dev = Sensor(port, "default/thermo-kill")
        try:
            eventually(lambda: dev.acknowledged("30"), 30, "the edge answering")
            eventually(lambda: reported(e, "thermo-kill", "temperature") == "30", 30, "a first value")
            acked = ["30"] + [v for v in ("31", "32", "33") if dev.acknowledged(v, timeout=10)]
            e.edge.kill9()  # at once: "33" may still be in the store's report queue
            t0 = time.monotonic()
            e.edge.run_detached()
            f = figures(e, "thermo-kill", "edge-kill9-after-ack", acked, t0)
            eventually(lambda: dev.acknowledged("34"), 60, "twin traffic after the restart")
            eventually(lambda: reported(e, "thermo-kill", "temperature") == "34", 60, "the next value")
        finally:
            dev.close()
        assert f["acknowledged"] == 4 and f["lost_twin_values"] == 0, f
    finally:
        teardown()
