"""The device plane inside `kedge edge run` (EdgeRuntime) against the test cloud built from the real
CloudHub: Device objects from the cloud, reports on KubeEdge's wire, offline store-and-forward through
a cut link, coalescing, twins restored at restart before the cloud is back, an external mosquitto
killed and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config import EdgeConfig
from runtime.edge.run import EdgeRuntime
from runtime.protocol import Message, new_message
from tests.devices.mqttclient import MODEL, Client, aget, apub, device, twin_update
from tests.fixtures import find_binary
from tests.fixtures.edge import RecordedCloud, make_edge_root, running
from tests.fixtures.mqtt import free_port, mosquitto_config
from tests.fixtures.procs import start, stop
from tests.fixtures.proxy import TcpProxy
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

DEV = "$hw/events/device/default/thermostat-01"
REPORT = "device/default/thermostat-01/twin/edge_updated"
REPO = Path(__file__).resolve().parents[2]


def _root(tmp_path: Path, certs: TLSCerts, server: str, window: float = 0.05) -> EdgeConfig:
    cfg = make_edge_root(tmp_path, certs, "n1", server)
    cfg.mqtt.port = 0
    cfg.mqtt.report_window_seconds = window
    return cfg


async def _send_devices(cloud: RecordedCloud, desired: str = "21.5") -> None:
    hub = cloud.hub
    await eventually_async(lambda: hub.connected("n1"), 15, "edge session")
    model_res, device_res = "default/devicemodel/thermostat-model", "default/device/thermostat-01"
    await hub.send(
        "n1", new_message("devicecontroller", "resource", "insert", model_res, MODEL, resourceversion="7")
    )
    dev = device(desired=desired)
    await hub.send(
        "n1", new_message("devicecontroller", "resource", "insert", device_res, dev, resourceversion="8")
    )
    ids = [{"id": "default/thermostat-01", "name": "thermostat-01"}]
    added = {"event_id": "m", "timestamp": 1, "added_devices": ids, "removed_devices": None}
    await hub.send("n1", new_message("devicecontroller", "twin", "update", "membership", added))


def _reports(cloud: RecordedCloud, resource: str = REPORT) -> list[Message]:
    return [m for m in cloud.ctl.requests if m.resource == resource]


async def _with_device(cloud: RecordedCloud, rt: EdgeRuntime) -> Client:
    """The cloud sends the device and its model; a device client once the edge knows it."""
    await _send_devices(cloud)
    await eventually_async(
        lambda: rt.devices and "default/thermostat-01" in rt.devices.bridge.specs, 10, "spec"
    )  # type: ignore[union-attr]
    return await asyncio.to_thread(_client, rt)


@contextlib.asynccontextmanager
async def edge_with_device(
    cloud: RecordedCloud, cfg: EdgeConfig, root: Path
) -> AsyncIterator[tuple[EdgeRuntime, Client]]:
    """The edge runtime with the cloud's device on it and a device client connected (closed after)."""
    async with running(EdgeRuntime(cfg, root, pods=False)) as rt:
        dev = await _with_device(cloud, rt)
        try:
            yield rt, dev
        finally:
            await asyncio.to_thread(dev.close)


def _client(rt: EdgeRuntime) -> Client:
    assert rt.devices is not None and rt.devices.broker is not None
    host, port = rt.devices.broker.addresses[0]
    return Client(host, port, "thermostat-01").sub(f"{DEV}/#")


async def test_cloud_devices_reach_mqtt_and_reports_reach_the_cloud_on_kubeedges_wire(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    cfg = _root(tmp_path, tls_certs, recorded_cloud.server)
    async with edge_with_device(recorded_cloud, cfg, tmp_path) as (rt, dev):
        assert rt.devices is not None
        await apub(dev, f"{DEV}/twin/get", b'{"event_id":"g"}')
        assert (await aget(dev, f"{DEV}/twin/update/delta")).json()["delta"] == {"setpoint": "21.5"}
        await apub(dev, f"{DEV}/twin/update", twin_update("r-1", temperature="23.4"))
        await aget(dev, f"{DEV}/twin/update/result")
        await eventually_async(lambda: _reports(recorded_cloud), 10, "edge_updated at the cloud")
        msg = _reports(recorded_cloud)[0]
        assert (msg.source, msg.group, msg.operation) == ("twin", "resource", "update")
        prop = msg.content["twin"]["temperature"]
        assert prop["actual"]["value"] == "23.4" and prop["metadata"] == {"type": "float"}
        assert prop["actual_version"]["edge"] == 1 and isinstance(
            prop["actual"]["metadata"]["timestamp"], int
        )
        assert msg.content["event_id"] == "r-1"
        await apub(dev, f"{DEV}/state/update", b'{"event_id":"s","state":"online"}')
        state_res = "device/default/thermostat-01/state/update"
        await eventually_async(lambda: _reports(recorded_cloud, state_res), 10, "state at the cloud")
        body = json.loads(_reports(recorded_cloud, state_res)[0].content)  # a JSON string, as KubeEdge
        assert body["device"]["state"] == "online" and body["device"]["lastOnlineTime"].endswith("Z")
        await apub(dev, "$hw/events/upload/default/thermostat-01/data", b'{"data":{"t":"1"}}')
        await eventually_async(
            lambda: _reports(recorded_cloud, "$hw/events/upload/default/thermostat-01/data"), 10, "upload"
        )
        up = _reports(recorded_cloud, "$hw/events/upload/default/thermostat-01/data")[0]
        assert (up.source, up.group, up.operation, up.content) == (
            "bus",
            "user",
            "upload",
            '{"data":{"t":"1"}}',
        )
        st = (await rt.status())["devices"]
        assert st["broker"]["clients"] == 1 and st["devices"][0]["id"] == "default/thermostat-01"
        assert st["devices"][0]["lastReport"] is not None and st["messages"]["uploads"] == 1


async def test_offline_reports_are_stored_and_delivered_in_order_without_loss_or_duplicates(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path, tcp_proxy: list[TcpProxy]
) -> None:
    proxy = await TcpProxy("127.0.0.1", recorded_cloud.hub.bound_port).start()
    tcp_proxy.append(proxy)
    cfg = _root(tmp_path, tls_certs, proxy.address, window=0.05)
    async with edge_with_device(recorded_cloud, cfg, tmp_path) as (rt, dev):
        proxy.cut()
        proxy.reset()
        await eventually_async(lambda: rt.hub is not None and not rt.hub.connected, 10, "edge offline")
        for i in range(1, 21):  # spaced beyond the window: every value must reach the cloud
            await apub(dev, f"{DEV}/twin/update", twin_update(f"off-{i}", temperature=str(i)))
            assert (await aget(dev, f"{DEV}/twin/update/result")).json()["event_id"] == f"off-{i}"
            await asyncio.sleep(0.08)
        assert _reports(recorded_cloud) == []
        assert (await rt.status())["devices"]["reports"]["pendingReports"] == 20
        proxy.restore()
        await eventually_async(lambda: len(_reports(recorded_cloud)) >= 20, 30, "20 reports after reconnect")
        await asyncio.sleep(0.5)  # nothing more may follow
        values = [m.content["twin"]["temperature"]["actual"]["value"] for m in _reports(recorded_cloud)]
        assert values == [str(i) for i in range(1, 21)]
        assert [m.content["event_id"] for m in _reports(recorded_cloud)] == [f"off-{i}" for i in range(1, 21)]


async def test_a_flapping_property_is_coalesced_but_its_last_value_and_count_arrive(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    cfg = _root(tmp_path, tls_certs, recorded_cloud.server, window=1.0)
    async with edge_with_device(recorded_cloud, cfg, tmp_path) as (rt, dev):
        for i in range(1, 51):
            await apub(dev, f"{DEV}/twin/update", twin_update(f"f-{i}", temperature=str(i)))
        for _ in range(50):
            await aget(dev, f"{DEV}/twin/update/result")

        def total() -> int:
            return sum(
                1 + m.content["twin"]["temperature"].get("coalesced", 0) for m in _reports(recorded_cloud)
            )

        await eventually_async(lambda: total() == 50, 15, "all 50 accounted for")
        sent = _reports(recorded_cloud)
        assert len(sent) < 50, "a flapping sensor must not send one message per value"
        assert sent[-1].content["twin"]["temperature"]["actual"]["value"] == "50"
        assert (await rt.status())["devices"]["reports"]["coalesced"] == 50 - len(sent)


async def test_restart_restores_twins_and_desired_values_before_the_cloud_is_back(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    cfg = _root(tmp_path, tls_certs, recorded_cloud.server)
    async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
        dev = await _with_device(recorded_cloud, rt)
        await apub(dev, f"{DEV}/twin/update", twin_update("before", temperature="23.4"))
        await aget(dev, f"{DEV}/twin/update/result")
        await asyncio.to_thread(dev.close)
    cfg.hub.server = f"127.0.0.1:{free_port()}"  # the cloud is gone
    async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
        await eventually_async(lambda: rt.devices is not None and rt.devices.broker is not None, 10, "broker")
        dev = await asyncio.to_thread(_client, rt)
        try:
            await apub(dev, f"{DEV}/twin/get", b'{"event_id":"after"}')
            twin = (await aget(dev, f"{DEV}/twin/get/result")).json()["twin"]
            assert twin["temperature"]["actual"]["value"] == "23.4"
            assert twin["setpoint"]["expected"]["value"] == "21.5"
            assert (await aget(dev, f"{DEV}/twin/update/delta")).json()["delta"] == {"setpoint": "21.5"}
        finally:
            await asyncio.to_thread(dev.close)
    cli = [sys.executable, "-m", "kubeedge_cli", "status", "devices", "-o", "json", "--root", str(tmp_path)]
    out = await asyncio.to_thread(subprocess.run, cli, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    (only,) = view["devices"]
    props = {t["property"]: t for t in only["twins"]}
    assert props["temperature"]["actual"] == "23.4" and props["temperature"]["actualVersion"]["edge"] == 1
    assert props["setpoint"]["expected"] == "21.5" and props["setpoint"]["expectedVersion"]["cloud"] == 1


def _mosquitto(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    conf = tmp_path / f"mosq-{port}.conf"
    conf.write_text(mosquitto_config(port))
    return start([find_binary("mosquitto") or "mosquitto", "-c", str(conf)], tmp_path / "mosq.log")


@pytest.mark.broker
async def test_external_broker_killed_and_restarted_reconnects_resubscribes_and_status_shows_it(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    port = free_port()
    proc = _mosquitto(tmp_path, port)
    cfg = _root(tmp_path, tls_certs, recorded_cloud.server)
    cfg.mqtt.mode, cfg.mqtt.url = "external", f"tcp://127.0.0.1:{port}"
    try:
        async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
            await _send_devices(recorded_cloud)
            await eventually_async(lambda: rt.devices is not None, 10, "device plane")
            ext = rt.devices
            assert ext is not None

            def connected() -> Any:
                return (
                    ext.external is not None
                    and ext.external.connected
                    and "default/thermostat-01" in ext.bridge.specs
                )  # type: ignore[union-attr]

            await eventually_async(connected, 15, "bridge connected to mosquitto")

            async def round_trip(event: str) -> None:
                dev = await asyncio.to_thread(Client, "127.0.0.1", port, f"dev-{event}")
                try:
                    await asyncio.to_thread(dev.sub, f"{DEV}/twin/update/result")
                    await apub(dev, f"{DEV}/twin/update", twin_update(event, temperature="20"))
                    assert (await aget(dev, f"{DEV}/twin/update/result")).json()["event_id"] == event
                finally:
                    await asyncio.to_thread(dev.close)

            await round_trip("before")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            await eventually_async(lambda: not ext.external.connected, 10, "loss noticed")  # type: ignore[union-attr]
            st = (await rt.status())["devices"]
            assert st["external"]["connected"] is False and st["trouble"]["external-broker"]["active"] is True
            proc = _mosquitto(tmp_path, port)
            await eventually_async(lambda: ext.external.connected, 40, "reconnected")  # type: ignore[union-attr]
            await round_trip("after")  # answered again: the bridge subscribed anew
            st = (await rt.status())["devices"]
            assert st["external"]["connects"] == 2 and st["trouble"]["external-broker"]["active"] is False
    finally:
        stop(proc)


async def test_a_report_lost_with_the_link_before_the_clouds_ok_is_sent_again(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path, tcp_proxy: list[TcpProxy]
) -> None:
    proxy = await TcpProxy("127.0.0.1", recorded_cloud.hub.bound_port).start()
    tcp_proxy.append(proxy)
    ctl = recorded_cloud.ctl
    answer = ctl.answer
    lost: list[Message] = []

    async def lose_the_first_report(node: str, msg: Message) -> Message | None:
        if msg.resource == REPORT and not lost:
            lost.append(msg)
            proxy.reset()  # the link dies with the report unanswered
            return None
        return await answer(node, msg)

    ctl.answer = lose_the_first_report  # type: ignore[method-assign]
    cfg = _root(tmp_path, tls_certs, proxy.address)
    cfg.mqtt.report_ack_timeout_seconds = 2.0
    async with edge_with_device(recorded_cloud, cfg, tmp_path) as (rt, dev):
        await apub(dev, f"{DEV}/twin/update", twin_update("lost-1", temperature="30.5"))
        await aget(dev, f"{DEV}/twin/update/result")
        await eventually_async(lambda: len(_reports(recorded_cloud)) >= 2, 30, "the report again")
        again = _reports(recorded_cloud)[1]
        assert again.content["event_id"] == "lost-1"  # the same report, recognisable
        assert again.content["twin"]["temperature"]["actual"]["value"] == "30.5"
        await eventually_async(lambda: rt.devices and rt.devices.store.pending_reports == 0, 10, "acked")  # type: ignore[union-attr]
