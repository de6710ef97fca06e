"""DeviceStatus: created for each Device, written from the edge's reports (only by the node the Device
is bound to) in cloudcore's shapes, removed with the Device; a cloud starting with many Devices bounds
its DeviceStatus calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from runtime.kube.client import make_client
from runtime.kube.resources import DEVICEMODELS, DEVICES
from runtime.protocol import new_message
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.devicecloud import (
    Devices,
    actual,
    device,
    get_status,
    install_device_crds,
    model,
    reported_is,
    start_controller,
    state_is,
    state_report,
    status_gone,
    twin_report,
)
from tests.fixtures.wait import eventually_async


async def test_reports_land_in_devicestatus_and_a_node_cannot_write_another_nodes_device(
    devices: Devices,
) -> None:
    client = devices.env.client
    own, intruder = await devices.edge("rep-1"), await devices.edge("rep-2")
    await client.create(DEVICEMODELS, model())
    await client.create(DEVICES, device("sensor", "rep-1"))
    await eventually_async(lambda: get_status("sensor", devices), what="DeviceStatus created")
    # the bound node reports: actual → reported, expected → observedDesired, unknown property ignored
    props = {
        "temperature": {
            **actual("21"),
            "expected": {"value": "20", "metadata": {"timestamp": 1795858430000}},
        },
        "humidity": actual("40"),
    }
    answer = await own.hub.request(twin_report("sensor", props), 10)
    assert (answer.operation, answer.content, answer.source) == ("response", "OK", "devicecontroller")

    async def reported() -> Any:
        twins = (await devices.status("sensor")).get("status", {}).get("twins") or []
        return twins if twins and "reported" in twins[0] else None

    twins = await eventually_async(reported, what="reported value in DeviceStatus (kubectl)")
    assert twins == [
        {
            "propertyName": "temperature",
            "reported": {"value": "21", "metadata": {"timestamp": "1795858435000", "type": "int"}},
            "observedDesired": {"value": "20", "metadata": {"timestamp": "1795858430000", "type": "int"}},
        }
    ]
    await own.hub.send(state_report("sensor", "online", lastOnlineTime="2026-12-07T11:00:00Z"))
    await eventually_async(lambda: state_is(devices, "sensor", "online"), what="state online")
    assert (await devices.status("sensor"))["status"]["lastOnlineTime"] == "2026-12-07T11:00:00Z"
    await own.hub.send(state_report("sensor", "offline"))
    await eventually_async(lambda: state_is(devices, "sensor", "offline"), what="state offline")
    assert (await devices.status("sensor"))["status"][
        "lastOnlineTime"
    ] == "2026-12-07T11:00:00Z"  # only online/ok
    # another node may not write it
    before = devices.ctl.counters["reportsRefused"]
    await intruder.hub.send(twin_report("sensor", {"temperature": actual("99")}))
    await intruder.hub.send(state_report("sensor", "unhealthy"))
    await eventually_async(lambda: devices.ctl.counters["reportsRefused"] == before + 2, what="both refused")
    await own.hub.send(twin_report("sensor", {"temperature": actual("22", ts=1795858436000)}))
    await eventually_async(lambda: reported_is(devices, "sensor", "22"), what="own report after refusal")
    final = (await devices.status("sensor"))["status"]
    assert final["state"] == "offline" and final["twins"][0]["reported"]["value"] == "22"
    # uploads are counted
    await own.hub.send(new_message("bus", "user", "upload", "SYS/dis/upload_records", "{}"))
    await eventually_async(lambda: devices.ctl.counters["uploads"] == 1, what="upload counted")


async def test_devicestatus_follows_the_device_and_merge_patches_keep_cloudcores_shape(
    devices: Devices,
) -> None:
    client = devices.env.client
    await devices.edge("life-1")
    await client.create(DEVICEMODELS, model())
    first = await client.create(DEVICES, device("life", "life-1"))
    st = await eventually_async(lambda: get_status("life", devices), what="DeviceStatus created")
    assert st["metadata"]["ownerReferences"][0]["uid"] == first["metadata"]["uid"]
    # cloudcore writes .status with a merge patch on the main resource: it must stick (no subresource)
    await devices.kubectl(
        "patch", "devicestatuses", "life", "--type", "merge",
        "-p", json.dumps({"status": {"state": "ok", "lastOnlineTime": "2026-12-07T10:00:00Z"}}),
    )  # fmt: skip
    assert (await devices.status("life"))["status"]["state"] == "ok"
    await client.delete(DEVICES, "life", namespace="default")
    await eventually_async(lambda: status_gone(devices, "life"), what="DeviceStatus removed with the Device")
    # recreated under the same name: a new DeviceStatus owned by the new Device
    second = await client.create(DEVICES, device("life", "life-1"))
    st2 = await eventually_async(lambda: get_status("life", devices), what="new DeviceStatus")
    assert st2["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]


async def test_a_cloud_starting_with_many_devices_bounds_its_devicestatus_calls(cloudenv: CloudEnv) -> None:
    """40 Devices exist when the controller starts: each gets its DeviceStatus, with at most 16 API
    calls in flight (the real client, counted on its way to the embedded API server)."""
    await install_device_crds(cloudenv.client)
    cloud = await cloudenv.cloud()
    for i in range(40):
        await cloudenv.client.create(DEVICES, device(f"many-{i}", "nowhere"))
    flight = {"now": 0, "max": 0}
    own = make_client(cloudenv.cp.kubeconfig)  # the controller's alone: other controllers' calls not counted
    real = own.request

    async def counted(*a: Any, **kw: Any) -> Any:
        flight["now"] += 1
        flight["max"] = max(flight["max"], flight["now"])
        try:
            await asyncio.sleep(0.01)  # hold the slot a little, so overlap shows
            return await real(*a, **kw)
        finally:
            flight["now"] -= 1

    own.request = counted  # type: ignore[method-assign]
    ctl, task = start_controller(cloudenv, cloud, own)
    try:
        await eventually_async(
            lambda: ctl.counters["statusCreated"] == 40, within=30, what="40 DeviceStatus objects"
        )
        assert 1 < flight["max"] <= 16 + 3, flight  # + the two watches' lists and the ack-state load
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await own.close()
