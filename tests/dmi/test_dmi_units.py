"""DMI pieces without sockets: the Device/DeviceModel conversion (edgecore's shapes), twin bodies from
DMI twins, the rate limit, one write per loop pass, and the checked-in stubs being what
scripts/gen_dmi.py makes of api.proto."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import wrappers_pb2

from runtime.edge.devices.dmi import api_pb2 as pb
from runtime.edge.devices.dmi import convert
from runtime.edge.devices.dmi.gate import RateLimit
from runtime.edge.devices.dmi.server import OneWritePerPass, twin_body
from tests.devices.mqttclient import MODEL

REPO = Path(__file__).parents[2]

KUBEEDGE_DEVICE = {  # KubeEdge's v1beta1 shape: protocol config and per-property visitors
    "apiVersion": "devices.kubeedge.io/v1beta1",
    "kind": "Device",
    "metadata": {"name": "beta", "namespace": "plant"},
    "spec": {
        "deviceModelRef": {"name": "thermostat-model"},
        "nodeName": "n1",
        "protocol": {"protocolName": "modbus",
                     "configData": {"data": {"port": "/dev/ttyS0", "baudRate": 9600, "tls": False,
                                             "slaves": [1, 2]}}},
        "properties": [
            {"name": "temperature", "reportToCloud": True, "collectCycle": 1000, "reportCycle": 2000,
             "visitors": {"protocolName": "modbus",
                          "configData": {"data": {"register": "HoldingRegister", "offset": 2, "scale": 0.1}}},
             "pushMethod": {"mqtt": {"address": "tcp://127.0.0.1:1883", "topic": "t", "qos": 1}}},
            {"name": "setpoint", "desired": {"value": "21.5"}},
        ],
        "methods": [{"name": "set", "propertyNames": ["setpoint"]}],
    },
}  # fmt: skip


def _unpack(a: object) -> object:
    for w in (wrappers_pb2.StringValue, wrappers_pb2.FloatValue, wrappers_pb2.BoolValue):
        if a.Is(w.DESCRIPTOR):  # type: ignore[attr-defined]
            v = w()
            a.Unpack(v)  # type: ignore[attr-defined]
            return (w.DESCRIPTOR.name, v.value)
    return None


def test_device_conversion_follows_edgecore() -> None:
    d = convert.device(
        KUBEEDGE_DEVICE, MODEL, {"temperature": {"actual": {"value": "20.5"}, "metadata": {"type": "float"}}}
    )
    assert (d.name, d.namespace, d.spec.deviceModelReference) == ("beta", "plant", "thermostat-model")
    assert d.spec.protocol.protocolName == "modbus"
    cfg = {k: _unpack(v) for k, v in d.spec.protocol.configData.data.items()}
    assert cfg["port"] == ("StringValue", "/dev/ttyS0")
    assert cfg["baudRate"] == ("FloatValue", 9600.0)  # JSON numbers: Go's float64 narrowed to FloatValue
    assert cfg["tls"] == ("BoolValue", False)
    assert cfg["slaves"] == ("StringValue", "[1,2]")  # edgecore refuses the device; kedge sends JSON text
    temp, setp = d.spec.properties
    assert temp.visitors.protocolName == "modbus" and temp.collectCycle == 1000 and temp.reportCycle == 2000
    assert _unpack(temp.visitors.configData.data["offset"]) == ("FloatValue", 2.0)
    assert temp.pushMethod.mqtt.topic == "t" and temp.pushMethod.mqtt.qos == 1 and temp.reportToCloud
    assert temp.HasField("desired") and temp.desired.value == "" and temp.desired.metadata["type"] == "float"
    assert setp.desired.value == "21.5" and setp.HasField("visitors") and setp.visitors.HasField("configData")
    assert d.spec.methods[0].propertyNames == ["setpoint"]
    assert d.status.twins[0].reported.value == "20.5" and not d.status.twins[0].HasField("observedDesired")
    assert convert.fingerprint(d) == convert.fingerprint(convert.device(KUBEEDGE_DEVICE, MODEL, {}))


def test_model_conversion() -> None:
    m = convert.model(MODEL)
    assert (m.name, m.namespace) == ("thermostat-model", "default")
    p = m.spec.properties[0]
    assert (p.name, p.type, p.minimum, p.maximum) == ("temperature", "FLOAT", "-40", "100")
    assert convert.model_protocol(MODEL) == "modbus"


def test_twin_body_treats_missing_and_empty_parts() -> None:
    t = pb.Twin(propertyName="p")
    assert twin_body(t) == {}
    t.observedDesired.value = ""  # mapper-framework's "no desired value"
    assert twin_body(t) == {}
    t.reported.value = "3"
    t.reported.metadata.update({"type": "int", "timestamp": "17"})
    assert twin_body(t) == {
        "actual": {"value": "3", "metadata": {"timestamp": 17}},
        "metadata": {"type": "int"},
    }


def test_rate_limit_is_a_token_bucket() -> None:
    now = [0.0]
    lim = RateLimit(10.0, 3, clock=lambda: now[0])
    assert [lim.allow() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.1  # one token back
    assert lim.allow() and not lim.allow()
    assert lim.refused == 2


def test_checked_in_stubs_are_what_the_generator_makes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen_dmi.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True, cwd=REPO, timeout=120)  # fmt: skip
    names = ("runtime/edge/devices/dmi/api_pb2.py", "runtime/edge/devices/dmi/api_pb2.pyi",
             "runtime/edge/devices/dmi/api_grpc.py", "tests/dmi/api_pb2_grpc.py")  # fmt: skip
    for name in names:
        assert (tmp_path / name).read_text() == (REPO / name).read_text(), f"{name}: run scripts/gen_dmi.py"


def test_the_proto_keeps_kubeedges_field_numbers() -> None:
    """A few wire facts of KubeEdge's dmi/v1beta1 that a renumbering would break."""
    f = pb.MapperInfo.DESCRIPTOR.fields_by_name
    assert (f["address"].number, f["protocol"].number) == (5, 4)
    f = pb.PushMethod.DESCRIPTOR.fields_by_name
    assert (f["dbMethod"].number, f["otel"].number, f["anomalyDetection"].number) == (3, 4, 5)
    f = pb.Twin.DESCRIPTOR.fields_by_name
    assert (f["observedDesired"].number, f["reported"].number) == (2, 3)
    assert pb.DESCRIPTOR.package == "v1beta1"
    assert [m.name for m in pb.DESCRIPTOR.services_by_name["DeviceManagerService"].methods] == [
        "MapperRegister", "ReportDeviceStatus", "ReportDeviceStates"]  # fmt: skip


def test_dmi_flag_and_config() -> None:
    from runtime.config import EdgeConfig
    from runtime.edge.launcher import dmi_sets
    from runtime.edge.run import EdgeRuntime
    from runtime.errors import ConfigError, UsageError

    assert dmi_sets(None) == []
    assert dmi_sets("on") == ["dmi.enabled=true"] and dmi_sets("off") == ["dmi.enabled=false"]
    assert dmi_sets("/run/x/dmi.sock") == ["dmi.enabled=true", "dmi.socket=/run/x/dmi.sock"]
    with pytest.raises(UsageError):
        dmi_sets("yes")
    cfg = EdgeConfig()
    cfg.node.name, cfg.hub.server, cfg.mqtt.mode, cfg.dmi.enabled = "n1", "127.0.0.1:1", "off", True
    with pytest.raises(ConfigError, match=r"dmi\.enabled needs the device plane"):
        EdgeRuntime(cfg, Path("/nonexistent"))


def test_default_socket_is_kubeedges_path_under_the_root(tmp_path: Path) -> None:
    from runtime.config import load_edge

    assert load_edge(None, tmp_path).dmi.socket == str(tmp_path / "etc" / "kubeedge" / "dmi.sock")
    assert load_edge(None, tmp_path).dmi.enabled is False


def test_status_rows_name_each_mapper_and_its_health() -> None:
    from kubeedge_cli.status_devices import section

    dmi = {"socket": "/etc/kubeedge/dmi.sock", "serving": True, "rejected": 2, "rateLimited": 0, "mappers": [
        {"name": "thermometer", "protocol": "virtual", "address": "/tmp/t.sock", "health": "down",
         "error": "cannot connect to /tmp/t.sock", "failures": 3, "devices": ["default/a"]}]}  # fmt: skip
    devices = {"mode": "embedded", "broker": {"listeners": ["127.0.0.1:1883"]}, "dmi": dmi, "devices": [
        {"id": "default/a", "properties": 2, "state": "online", "lastReport": None, "protocol": "virtual",
         "mapper": {"name": "thermometer", "health": "down"}}]}  # fmt: skip
    rows = dict(section({"devices": devices}))
    assert rows["dmi"] == "serving /etc/kubeedge/dmi.sock, 1 mapper(s), 2 refused, 0 over the rate limit"
    assert rows["  mapper thermometer"].startswith(
        "virtual at /tmp/t.sock: DOWN (cannot connect to /tmp/t.sock; 3"
    )
    assert rows["  default/a"].endswith("mapper thermometer (down)")


def test_an_answer_leaves_in_one_write_per_loop_pass() -> None:
    """grpclib writes a unary answer as headers, message, trailers: one write to the socket instead."""

    class Recorder:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

        def get_extra_info(self, name: str) -> str:
            return f"extra {name}"

    async def main() -> Recorder:
        real = Recorder()
        t = OneWritePerPass(real)  # type: ignore[arg-type]
        for part in (b"headers|", b"message|", b"trailers"):
            t.write(part)
        assert real.writes == []  # nothing until the loop's next pass
        await asyncio.sleep(0)
        t.write(b"late")
        t.close()  # what is pending leaves before the close
        assert t.get_extra_info("peername") == "extra peername"
        return real

    real = asyncio.run(main())
    assert real.writes == [b"headers|message|trailers", b"late"] and real.closed
