"""DMI at the edge's device plane with a real mapper process (tests/dmi/thermometer.py) on real sockets:
registration with data, reports into the twin store, desired changes and moves reaching the mapper,
bad twins refused with a reason, a killed mapper shown down and taken back when it registers again."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import grpc
import pytest

from runtime.config import DmiSection, MqttSection
from runtime.edge.devices.dmi import api_pb2 as pb
from runtime.edge.devices.dmi.service import Dmi
from runtime.edge.devices.plane import DevicePlane
from runtime.errors import ConfigError
from runtime.protocol import new_message
from tests.devices.conftest import PlaneHandle, start_plane
from tests.devices.mqttclient import device
from tests.dmi import api_pb2_grpc as rpc
from tests.dmi.conftest import Mapper, short_dir
from tests.fixtures.wait import eventually

DEV = "default/thermostat-01"


async def _nothing(_typ: str) -> list[Any]:
    return []


def actual(handle: PlaneHandle, prop: str) -> str | None:
    async def get() -> Any:
        assert handle.plane.store is not None
        return ((handle.plane.store.twins.get(DEV) or {}).get(prop) or {}).get("actual", {}).get("value")

    result: str | None = handle.lt.call(get())
    return result


def mapper_status(handle: PlaneHandle) -> dict[str, Any]:
    mappers = handle.status()["dmi"]["mappers"]
    return mappers[0] if mappers else {}


def send(handle: PlaneHandle, op: str, dev: dict[str, Any]) -> None:
    handle.objects["device"] = [] if op == "delete" else [dev]
    handle.lt.call(
        handle.plane.on_cloud(
            new_message("devicecontroller", "resource", op, f"default/device/{dev['metadata']['name']}", dev)
        )
    )


def test_socket_is_0600(dmi_plane: tuple[PlaneHandle, Path]) -> None:
    _, folder = dmi_plane
    mode = (folder / "dmi.sock").stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_registration_reports_desired_move_and_restart(
    dmi_plane: tuple[PlaneHandle, Path], mapper: Mapper
) -> None:
    handle, _ = dmi_plane
    mapper.start()
    reg = mapper.wait(lambda e: e["event"] == "registered")
    assert [d["id"] for d in reg["devices"]] == [DEV] and reg["models"] == ["default/thermostat-model"]
    got = reg["devices"][0]
    assert got["protocol"] == "modbus" and got["model"] == "thermostat-model"
    assert (
        got["desired"]["setpoint"]["value"] == "21.5"
        and got["desired"]["setpoint"]["metadata"]["type"] == "float"
    )
    assert got["desired"]["temperature"]["value"] == ""  # always present: mapper-framework reads it unchecked

    acked = mapper.wait(lambda e: e["event"] == "acked")
    first = acked["values"]["temperature"]
    eventually(lambda: actual(handle, "temperature") not in (None,), 5, what="a stored temperature")
    assert actual(handle, "setpoint") == "21.5"
    st = handle.status()
    assert st["dmi"]["requests"]["MapperRegister"] == 1
    row = next(d for d in st["devices"] if d["id"] == DEV)
    assert row["protocol"] == "modbus" and row["mapper"] == {"name": "thermometer", "health": "ok"}
    assert float(actual(handle, "temperature") or 0) >= float(first)

    # the cloud changes the desired setpoint: the mapper gets UpdateDevice with it
    n = len(mapper.journal())
    send(handle, "update", device(desired="23", rv="9"))
    upd = mapper.wait(lambda e: e["event"] == "UpdateDevice", after=n)
    assert upd["device"]["desired"]["setpoint"]["value"] == "23"
    eventually(lambda: actual(handle, "setpoint") == "23", 5, what="the applied setpoint reported back")

    # SIGKILL: the edge notices (probe), says down; a restart registers again and is ok
    mapper.kill()
    eventually(lambda: mapper_status(handle).get("health") == "down", 15, what="the mapper shown down")
    # values only grow; killed between the edge's answer and its journal line, the mapper's last
    # journaled value is older than the stored one — the edge must never hold an earlier one
    last = float([e for e in mapper.journal() if e["event"] == "acked"][-1]["values"]["temperature"])
    assert float(actual(handle, "temperature") or -1) >= last, (
        "the last value the edge acknowledged is stored"
    )
    n = len(mapper.journal())
    mapper.start(start_at=60.0)
    again = mapper.wait(lambda e: e["event"] == "registered", after=n)
    assert again["devices"][0]["desired"]["setpoint"]["value"] == "23"
    eventually(lambda: mapper_status(handle).get("health") == "ok", 10, what="the mapper ok again")
    eventually(lambda: float(actual(handle, "temperature") or 0) > 60, 10, what="reports after the restart")
    assert handle.status()["dmi"]["requests"]["MapperRegister"] == 2

    # the device moves to another node: RemoveDevice
    n = len(mapper.journal())
    send(handle, "update", device(node="n2", desired="23", rv="10"))
    gone = mapper.wait(lambda e: e["event"] == "RemoveDevice", after=n)
    assert gone["id"] == DEV


def _stub(folder: Path) -> Any:
    return rpc.DeviceManagerServiceStub(grpc.insecure_channel(f"unix:{folder / 'dmi.sock'}"))


def test_a_bad_twin_is_refused_with_device_property_and_reason_and_good_ones_stored(
    dmi_plane: tuple[PlaneHandle, Path],
) -> None:
    handle, folder = dmi_plane
    stub = _stub(folder)
    req = pb.ReportDeviceStatusRequest(deviceName="thermostat-01", deviceNamespace="default")
    t = req.reportedDevice.twins.add(propertyName="temperature")
    t.reported.value = "hot"
    t.reported.metadata["type"] = "float"
    t2 = req.reportedDevice.twins.add(propertyName="setpoint")
    t2.observedDesired.value = "22"  # no reported part: edgecore would crash, kedge stores expected
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportDeviceStatus(req, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = err.value.details() or ""
    assert "device default/thermostat-01 property temperature" in details and "'hot' is not float" in details
    assert "1 other property stored" in details

    async def expected() -> Any:
        assert handle.plane.store is not None
        return handle.plane.store.twins[DEV]["setpoint"]["expected"]["value"]

    assert handle.lt.call(expected()) == "22"

    # out of range, unknown property, unknown device, bad state
    req = pb.ReportDeviceStatusRequest(deviceName="thermostat-01")  # namespace defaults to "default"
    req.reportedDevice.twins.add(propertyName="temperature").reported.value = "500"
    req.reportedDevice.twins.add(propertyName="humidity").reported.value = "1"
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportDeviceStatus(req, timeout=5)
    assert "property temperature: the value 500 is out of range: maximum is 100" in (
        err.value.details() or ""
    )
    assert "property humidity" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportDeviceStatus(pb.ReportDeviceStatusRequest(deviceName="nope"), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "default/nope" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.ReportDeviceStates(
            pb.ReportDeviceStatesRequest(deviceName="thermostat-01", state="sleepy"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stub.ReportDeviceStates(
        pb.ReportDeviceStatesRequest(deviceName="thermostat-01", state="online"), timeout=5
    )
    assert handle.status()["devices"][0]["state"] == "online"

    # a mapper without protocol is refused
    with pytest.raises(grpc.RpcError) as err:
        stub.MapperRegister(pb.MapperRegisterRequest(mapper=pb.MapperInfo(name="x")), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_registered_mapper_that_is_down_is_retried_with_backoff_and_said_once(
    dmi_plane: tuple[PlaneHandle, Path], caplog: pytest.LogCaptureFixture
) -> None:
    handle, folder = dmi_plane
    stub = _stub(folder)
    info = pb.MapperInfo(name="ghost", protocol="modbus", address=str(folder / "nobody.sock").encode())
    got = stub.MapperRegister(pb.MapperRegisterRequest(withData=False, mapper=info), timeout=1)
    assert list(got.deviceList) == []
    # withData false: the edge pushes the device itself — to a socket nobody serves
    eventually(lambda: mapper_status(handle).get("failures", 0) >= 3, 15, what="three failed attempts")
    st = mapper_status(handle)
    assert st["health"] == "down" and "CreateDeviceModel" in st["error"] and st["retryAt"]
    said = [r for r in caplog.records if "ghost" in r.getMessage() and "down" in r.getMessage()]
    assert len(said) == 1, "said once, then counted"


def test_a_group_socket_is_0660_owned_by_it_and_an_unknown_group_is_a_config_error(tmp_path: Path) -> None:
    folder = short_dir()
    sock = folder / "dmi.sock"
    gid = os.getgid()
    cfg = DmiSection(enabled=True, socket=str(sock), group=str(gid))
    _, finish = start_plane(tmp_path / "c.db", {"device": [device()]}, MqttSection(port=0), dmi=cfg)
    try:
        eventually(
            lambda: sock.exists() and stat.S_IMODE(sock.stat().st_mode) == 0o660, 10, what="the socket"
        )
        assert sock.stat().st_gid == gid
    finally:
        finish()
        shutil.rmtree(folder, ignore_errors=True)
    bad = DmiSection(enabled=True, socket=str(sock), group="no-such-group-kedge")
    with pytest.raises(ConfigError, match=r"dmi\.group"):
        Dmi(bad, DevicePlane(MqttSection(port=0), "n1", tmp_path / "d.db", cached=_nothing))


def test_a_killed_mapper_is_shown_down_while_device_messages_keep_waking_its_link(
    dmi_plane: tuple[PlaneHandle, Path], mapper: Mapper
) -> None:
    """Woken by the cloud's device messages more often than it would probe, with nothing new to send,
    the link still checks the mapper (seen in tests/e2e/test_dmi.py on a loaded machine)."""
    handle, _ = dmi_plane
    mapper.start()
    mapper.wait(lambda e: e["event"] == "acked")
    eventually(lambda: mapper_status(handle).get("health") == "ok", 10, what="the mapper ok")
    mapper.kill()

    def down_while_woken() -> bool:
        handle.lt.loop.call_soon_threadsafe(handle.plane.dmi.changed)  # as plane.on_cloud does
        return bool(mapper_status(handle).get("health") == "down")

    eventually(down_while_woken, 20, what="the killed mapper shown down", interval=0.5)
