"""DMI end to end: `kedge init --embedded` + `kedge join --dmi on`, Devices applied with kubectl, the
"virtual thermometer" mapper (tests/dmi/thermometer.py, gRPC over unix sockets, its own process)
registering with the edge, values read back from DeviceStatus with kubectl.

registration → device delivered → reported value in DeviceStatus; desired changed with kubectl →
UpdateDevice → applied value in DeviceStatus; mapper SIGKILLed → shown down, the last acknowledged
value in DeviceStatus → restarted → registers again; a wrong-typed value refused with a reason; the
device moved to another node → RemoveDevice — the whole sequence twice: Device/DeviceModel as kedge's
tests write them and in KubeEdge's v1beta1 shape.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import docker
import grpc
import pytest
import yaml

from runtime.edge.devices.dmi import api_pb2 as pb
from tests.dmi import api_pb2_grpc as rpc
from tests.dmi.conftest import Mapper, short_dir
from tests.fixtures import require
from tests.fixtures.e2e import E2E, free_port, kedge, reported, start_e2e
from tests.fixtures.wait import eventually

PROTOCOL = "virtual-thermometer"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    join = ("--mqtt", "embedded", "--set", f"mqtt.port={free_port()}", "--dmi", "on")
    e, teardown = start_e2e(tmp_path_factory.mktemp("e2e-dmi"), client, join)
    try:
        yield e
    finally:
        teardown()
        client.close()


@pytest.fixture
def mapper(env: E2E) -> Iterator[Mapper]:
    folder = short_dir()
    m = Mapper(env.edge.root / "etc" / "kubeedge" / "dmi.sock", folder, protocol=PROTOCOL)
    try:
        yield m
    finally:
        m.stop()
        shutil.rmtree(folder, ignore_errors=True)


def apply(e: E2E, *docs: dict[str, Any]) -> None:
    e.cloud.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def thermometer(node: str, name: str, *, kubeedge_shape: bool = False) -> list[dict[str, Any]]:
    model: dict[str, Any] = {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
        "metadata": {"name": "thermometer-model", "namespace": "default"},
        "spec": {"protocol": PROTOCOL, "properties": [
            {"name": "temperature", "type": "FLOAT", "accessMode": "ReadOnly", "minimum": "-40",
             "maximum": "1000", "unit": "celsius"},
            {"name": "setpoint", "type": "FLOAT", "accessMode": "ReadWrite"}]},
    }  # fmt: skip
    props: list[dict[str, Any]] = [{"name": "temperature", "reportToCloud": True},
                                   {"name": "setpoint", "desired": {"value": "21.5"}}]  # fmt: skip
    protocol: dict[str, Any] = {"protocolName": PROTOCOL}
    if kubeedge_shape:  # as KubeEdge's mapper samples write them
        protocol["configData"] = {"data": {"deviceID": 7, "serialPort": "/dev/ttyS0", "debug": True}}
        for p, offset in zip(props, (1, 2), strict=True):
            visitors = {
                "protocolName": PROTOCOL,
                "configData": {"data": {"dataType": "float", "offset": offset}},
            }
            p.update({"collectCycle": 1000, "reportCycle": 1000, "visitors": visitors})
    dev = {
        "apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"deviceModelRef": {"name": "thermometer-model"}, "nodeName": node, "protocol": protocol,
                 "properties": props},
    }  # fmt: skip
    return [model, dev]


def delivered(m: Mapper, device: str, after: int = 0) -> dict[str, Any]:
    """The device as the mapper got it: in its registration answer or by RegisterDevice."""

    def has(e: dict[str, Any]) -> bool:
        if e["event"] == "registered":
            return any(d["id"] == device for d in e["devices"])
        return e["event"] == "RegisterDevice" and e["device"]["id"] == device

    e = m.wait(has, 60, after=after)
    return (
        e["device"] if e["event"] == "RegisterDevice" else next(d for d in e["devices"] if d["id"] == device)
    )


def mapper_health(e: E2E) -> str:
    _, doc = e.edge.status()
    mappers = ((doc["edge"].get("devices") or {}).get("dmi") or {}).get("mappers") or []
    return str(mappers[0]["health"]) if mappers else ""


@pytest.mark.parametrize("shape", ["kedge", "kubeedge-v1beta1"])
def test_thermometer_mapper_end_to_end(env: E2E, mapper: Mapper, shape: str) -> None:
    """The whole sequence, with the Device/DeviceModel as kedge's tests write them and in KubeEdge's
    v1beta1 shape (protocol configData, per-property visitors, collect/report cycles)."""
    e = env
    name = "thermo-dmi" if shape == "kedge" else "thermo-dmi-v1beta1"
    apply(e, *thermometer(e.edge.node, name, kubeedge_shape=shape != "kedge"))
    mapper.start()
    got = delivered(mapper, f"default/{name}")
    assert got["protocol"] == PROTOCOL and got["desired"]["setpoint"]["value"] == "21.5"

    # a reported value reaches DeviceStatus (read with kubectl)
    acked = mapper.wait(lambda x: x["event"] == "acked" and x["id"] == f"default/{name}", 30)
    v = float(acked["values"]["temperature"])
    eventually(lambda: float(reported(e, name, "temperature") or -1) >= v, 30,
          "the reported temperature in DeviceStatus", interval=0.1)  # fmt: skip
    print(f"ReportDeviceStatus acked -> DeviceStatus via kubectl: {time.time() - acked['at']:.2f} s")
    eventually(lambda: reported(e, name, "setpoint") == "21.5", 30, "the applied setpoint")
    eventually(lambda: mapper_health(e) == "ok", 30, "the mapper shown ok in kedge status")

    # desired changed with kubectl -> UpdateDevice -> the mapper applies and reports it
    n = len(mapper.journal())
    patch = {"spec": {"properties": [{"name": "temperature", "reportToCloud": True},
                                     {"name": "setpoint", "desired": {"value": "24"}}]}}  # fmt: skip
    e.cloud.kubectl("patch", "devices.devices.kubeedge.io", name, "--type", "merge", "-p", json.dumps(patch))
    upd = mapper.wait(lambda x: x["event"] == "UpdateDevice", 30, after=n)
    assert upd["device"]["desired"]["setpoint"]["value"] == "24"
    eventually(lambda: reported(e, name, "setpoint") == "24", 30, "the new setpoint reported back")

    # `kedge status devices` names the mapper
    table = kedge("status", "devices", "--root", str(e.edge.root)).stdout
    assert "thermometer (ok)" in table, table

    # SIGKILL: shown down; the last value the edge acknowledged reaches DeviceStatus; it registers again
    mapper.kill()
    eventually(lambda: mapper_health(e) == "down", 30, "the killed mapper shown down")
    # values only grow; the mapper may die after the edge answered a report and before it journaled it,
    # so the edge may hold a later value than the last journaled one — never an earlier one
    last = float([x for x in mapper.journal() if x["event"] == "acked"][-1]["values"]["temperature"])
    eventually(lambda: float(reported(e, name, "temperature") or -1) >= last, 30,
               "the last acknowledged value (or a later one) in DeviceStatus")  # fmt: skip
    n = len(mapper.journal())
    mapper.start(start_at=500.0)
    again = delivered(mapper, f"default/{name}", after=n)
    assert again["desired"]["setpoint"]["value"] == "24"
    eventually(lambda: float(reported(e, name, "temperature") or 0) > 500, 30, "reports after the restart")
    eventually(lambda: mapper_health(e) == "ok", 30, "the restarted mapper shown ok")

    # a wrong-typed value is refused with a reason in the gRPC answer
    stub = rpc.DeviceManagerServiceStub(grpc.insecure_channel(f"unix:{mapper.dmi}"))
    req = pb.ReportDeviceStatusRequest(deviceName=name, deviceNamespace="default")
    twin = req.reportedDevice.twins.add(propertyName="temperature")
    twin.reported.value = "warm"
    twin.reported.metadata["type"] = "float"
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportDeviceStatus(req, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"device default/{name} property temperature: the value 'warm' is not float" in (
        err.value.details() or ""
    )

    # moved to another node -> RemoveDevice
    n = len(mapper.journal())
    e.cloud.kubectl("patch", "devices.devices.kubeedge.io", name, "--type", "merge",
                    "-p", json.dumps({"spec": {"nodeName": "elsewhere"}}))  # fmt: skip
    gone = mapper.wait(lambda x: x["event"] == "RemoveDevice", 30, after=n)
    assert gone["id"] == f"default/{name}"


def test_kubeedge_v1beta1_shape_reaches_the_mapper(env: E2E, mapper: Mapper) -> None:
    e = env
    apply(e, *thermometer(e.edge.node, "thermo-beta", kubeedge_shape=True))
    mapper.start()
    got = delivered(mapper, "default/thermo-beta")
    assert got["config"] == {"deviceID": {"type": "FloatValue", "value": 7.0},
                             "serialPort": {"type": "StringValue", "value": "/dev/ttyS0"},
                             "debug": {"type": "BoolValue", "value": True}}  # fmt: skip
    assert got["visitors"]["temperature"] == {"protocolName": PROTOCOL,
                                              "dataType": {"type": "StringValue", "value": "float"},
                                              "offset": {"type": "FloatValue", "value": 1.0}}  # fmt: skip
    eventually(lambda: reported(e, "thermo-beta", "setpoint") == "21.5", 30, "the v1beta1 device's report")
