"""The device plane end to end, as a user runs it: `kedge init --embedded` + `kedge join --mqtt
embedded` (the edge's own broker on a free loopback port), Devices applied with kubectl, a device
speaking KubeEdge's MQTT topics with paho-mqtt, DeviceStatus read back with kubectl.

device → twin/update → DeviceStatus; desired changed with kubectl → twin/update/delta on MQTT;
membership/get lists the device; KubeEdge's own sample YAMLs flow; the cloud away → reports keep
being answered at the edge and reach DeviceStatus after it returns.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import paho.mqtt.client as paho
import pytest
import yaml

from tests.fixtures import require
from tests.fixtures.e2e import E2E, free_port, reported, start_e2e
from tests.fixtures.wait import eventually

SAMPLES = Path(__file__).parents[1] / "cloud" / "data" / "kubeedge-device-samples.yaml"


class Device:
    """A device on the edge's broker: paho-mqtt on its own thread, every received message queued."""

    def __init__(self, port: int, device_id: str) -> None:
        self.prefix = f"$hw/events/device/{device_id}"
        self.n = 0
        self.got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"e2e-{device_id.replace('/', '-')}"
        )
        self.client.on_message = lambda _c, _u, m: self.got.put((m.topic, json.loads(m.payload or b"{}")))
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert connected.wait(10), "device could not connect to the edge's broker"

    def subscribe(self, *topics: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe([(t, 1) for t in topics])
        assert done.wait(10)

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(body), qos=1).wait_for_publish(10)

    def report(self, type_: str = "float", **values: str) -> str:
        """Publish actual values; returns the event id the result will carry."""
        ts = int(time.time() * 1000)
        self.n += 1
        twin = {k: {"actual": {"value": v, "metadata": {"timestamp": ts}}, "metadata": {"type": type_}}
                for k, v in values.items()}  # fmt: skip
        event_id = f"e2e-{self.n}"
        self.publish(f"{self.prefix}/twin/update", {"event_id": event_id, "timestamp": ts, "twin": twin})
        return event_id

    def result(self, event_id: str) -> dict[str, Any]:
        return self.wait(f"{self.prefix}/twin/update/result", match=lambda b: b.get("event_id") == event_id)

    def wait(self, topic: str, timeout: float = 15.0, match: Any = None) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                pytest.fail(f"nothing on {topic} within {timeout:.0f} s")
            try:
                t, body = self.got.get(timeout=left)
            except queue.Empty:
                continue
            if t == topic and (match is None or match(body)):
                return body

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[E2E, int]]:
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    port = free_port()
    e, teardown = start_e2e(
        tmp_path_factory.mktemp("e2e-dev"), client, ("--mqtt", "embedded", "--set", f"mqtt.port={port}")
    )
    try:
        yield e, port
    finally:
        teardown()
        client.close()


def apply(e: E2E, *docs: dict[str, Any]) -> None:
    e.cloud.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def thermostat(node: str, name: str = "thermo-e2e", desired: str = "21.5") -> list[dict[str, Any]]:
    model = {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
        "metadata": {"name": "thermo-model", "namespace": "default"},
        "spec": {"protocol": "mqtt", "properties": [
            {"name": "temperature", "type": "FLOAT", "accessMode": "ReadOnly"},
            {"name": "setpoint", "type": "FLOAT", "accessMode": "ReadWrite"}]},
    }  # fmt: skip
    dev = {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"deviceModelRef": {"name": "thermo-model"}, "nodeName": node,
                 "protocol": {"protocolName": "mqtt"},
                 "properties": [{"name": "temperature", "reportToCloud": True},
                                {"name": "setpoint", "desired": {"value": desired}}]},
    }  # fmt: skip
    return [model, dev]


def listed(dev: Device, node: str) -> list[str]:
    topic = f"$hw/events/node/{node}/membership/get"
    dev.publish(topic, {"event_id": "m1"})
    body = dev.wait(f"{topic}/result", match=lambda b: b.get("event_id") == "m1")
    return [d["id"] for d in body.get("devices") or []]


def test_report_reaches_devicestatus_and_desired_reaches_the_device(env: tuple[E2E, int]) -> None:
    e, port = env
    node = e.edge.node
    apply(e, *thermostat(node))
    dev = Device(port, "default/thermo-e2e")
    try:
        dev.subscribe(f"{dev.prefix}/twin/update/result", f"{dev.prefix}/twin/update/delta",
                      f"$hw/events/node/{node}/membership/get/result")  # fmt: skip
        eventually(lambda: "default/thermo-e2e" in listed(dev, node), 30, "membership/get to list the device")
        t0 = time.monotonic()
        assert "code" not in dev.result(dev.report(temperature="23.5"))
        eventually(
            lambda: reported(e, "thermo-e2e", "temperature") == "23.5",
            2.0,
            "the report in DeviceStatus",
            interval=0.05,
        )
        print(f"device publish -> DeviceStatus via kubectl: {time.monotonic() - t0:.2f} s")
        # desired changed with kubectl -> delta on MQTT
        patch = {"spec": {"properties": [{"name": "temperature", "reportToCloud": True},
                                         {"name": "setpoint", "desired": {"value": "25"}}]}}  # fmt: skip
        e.cloud.kubectl("patch", "devices.devices.kubeedge.io", "thermo-e2e", "--type", "merge",
                        "-p", json.dumps(patch))  # fmt: skip
        delta = dev.wait(
            f"{dev.prefix}/twin/update/delta", match=lambda b: (b.get("delta") or {}).get("setpoint") == "25"
        )
        assert delta["twin"]["setpoint"]["expected"]["value"] == "25"
    finally:
        dev.close()


def test_kubeedge_samples_flow_end_to_end(env: tuple[E2E, int]) -> None:
    e, port = env
    docs = [d for d in yaml.safe_load_all(SAMPLES.read_text()) if d]
    for d in docs:
        if d["kind"] == "Device":
            d["spec"]["nodeName"] = e.edge.node
    apply(e, *docs)
    dev = Device(port, "default/temperature-instance")
    try:
        dev.subscribe(f"{dev.prefix}/twin/update/result")
        eventually(
            lambda: e.cloud.get("devicestatuses", "temperature-instance"), 30, "DeviceStatus of the sample"
        )

        def reports() -> bool:
            result = dev.result(dev.report("int", temperature="42"))  # the sample model: INT, 1..100
            assert "code" not in result, result
            return reported(e, "temperature-instance", "temperature") == "42"

        eventually(reports, 30, "the sample device's report in DeviceStatus", interval=1.0)
    finally:
        dev.close()


def test_reports_made_while_the_cloud_is_away_arrive_after_it_returns(env: tuple[E2E, int]) -> None:
    e, port = env
    apply(e, *thermostat(e.edge.node, name="thermo-away"))
    dev = Device(port, "default/thermo-away")
    try:
        dev.subscribe(f"{dev.prefix}/twin/update/result")
        eventually(lambda: e.cloud.get("devicestatuses", "thermo-away"), 30, "DeviceStatus")

        def first() -> bool:
            dev.report(temperature="20")
            return reported(e, "thermo-away", "temperature") == "20"

        eventually(first, 30, "a first report in DeviceStatus", interval=1.0)
        e.cloud.stop_cloud()
        eventually(lambda: not e.edge.connected(), 60, "the edge to notice the cloud is gone")
        for v in ("21", "22", "23"):  # the broker and the twins keep working offline
            assert dev.result(dev.report(temperature=v))["twin"]["temperature"]["actual"]["value"] == v
        assert reported(e, "thermo-away", "temperature") == "20"  # nothing reached the API meanwhile
        e.cloud.init()  # converges: restarts the stopped cloud
        eventually(lambda: reported(e, "thermo-away", "temperature") == "23", 60, "the last offline report")
    finally:
        dev.close()


def test_a_storm_of_many_devices_reaches_devicestatus_within_one_round_at_the_pace(
    env: tuple[E2E, int],
) -> None:
    """Many devices flapping fast for a while: the edge's uplink keeps one report per device waiting
    (later values fold into it) and paces itself below the cloud's per-node limit, so DeviceStatus
    has every device's last value within ≈ devices / mqtt.report_qps (20/s) after the storm — not
    after a drain that grows with the storm's length (before: one report per device per 0.5 s window
    queued at the edge, drained at the cloud's 30/s: ~40 s for this storm)."""
    e, port = env
    n, seconds, qps, window, slack = 50, 12.0, 20.0, 0.5, 15.0
    names = [f"storm-{i:02d}" for i in range(n)]
    model, first = thermostat(e.edge.node, name=names[0])
    apply(e, model, first, *[thermostat(e.edge.node, name=x)[1] for x in names[1:]])

    def statuses() -> dict[str, str]:
        """Each DeviceStatus's reported temperature ("None" before the first report)."""
        out = {}
        for item in e.cloud.get("devicestatuses")["items"]:
            twins = (item.get("status") or {}).get("twins") or []
            temp = [t for t in twins if t.get("propertyName") == "temperature"]
            out[item["metadata"]["name"]] = str(
                (temp[0].get("reported") or {}).get("value") if temp else None
            )
        return out

    eventually(lambda: set(names) <= set(statuses()), 60, "the DeviceStatuses", interval=1.0)
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="e2e-storm")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    last: dict[str, str] = {}
    pending: list[int] = []
    stop = threading.Event()

    def sample() -> None:  # the edge's backlog while the storm lasts
        while not stop.is_set():
            reports = ((e.edge.status()[1].get("edge") or {}).get("devices") or {}).get("reports") or {}
            if "pendingReports" in reports:
                pending.append(reports["pendingReports"])

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        k, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            name = names[k % n]
            last[name] = f"{1 + k / 100000:.5f}"
            body = {"event_id": f"st-{k}", "twin": {"temperature": {"actual": {"value": last[name]}}}}
            info = c.publish(f"$hw/events/device/default/{name}/twin/update", json.dumps(body), qos=1)
            k += 1
            if k % 20 == 0:
                time.sleep(0.02)  # ≤ 1,000/s: 20 updates per device and second, 10 per window
        info.wait_for_publish(60)  # the broker has them all (in order)
    finally:
        stop.set()
        sampler.join()
        c.loop_stop()
        c.disconnect()
    ended = time.monotonic()
    bound = n / qps + window + slack
    eventually(
        lambda: all(statuses().get(x) == v for x, v in last.items()),
        bound,
        f"every device's last value in DeviceStatus within {bound:.0f} s",
        interval=0.5,
    )
    took = time.monotonic() - ended
    assert pending and max(pending) <= n + qps, pending  # one waiting per device + the batch in flight
    print(f"storm of {k} updates over {n} devices: DeviceStatus had the last values {took:.1f} s after")
