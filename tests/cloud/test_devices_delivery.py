"""Devices and DeviceModels reach the node in spec.nodeName, with the membership update, in the
recorded KubeEdge shapes; they move between nodes, and only what changed is sent after a reconnect or
a restart (the Device controller on the embedded control plane, a real CloudHub and real EdgeHubs)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json

from runtime.kube.resources import DEVICEMODELS, DEVICES
from runtime.protocol import OP_DELETE, OP_INSERT, OP_UPDATE, Message
from tests.fixtures.cloudctl import capture
from tests.fixtures.devicecloud import (
    SAMPLES,
    Devices,
    actual,
    device,
    get_status,
    memberships,
    model,
    of,
    reported_is,
    start_controller,
    twin_report,
)
from tests.fixtures.wait import eventually_async


async def test_kubeedge_samples_reach_their_node_in_the_recorded_shapes(devices: Devices) -> None:
    e1 = await devices.edge("edge-node")
    other = await devices.edge("other-node")
    await devices.kubectl("apply", "-f", str(SAMPLES))
    await eventually_async(lambda: of(e1, "device", OP_INSERT), what="device insert at edge-node")
    dev = await devices.env.client.get(DEVICES, "temperature-instance", namespace="default")
    mdl = await devices.env.client.get(DEVICEMODELS, "temperature-model", namespace="default")
    (dm_ins,) = of(e1, "devicemodel", OP_INSERT)
    (dev_ins,) = of(e1, "device", OP_INSERT)
    assert dev_ins.resource == "default/device/temperature-instance"
    assert dev_ins.resourceversion == dev["metadata"]["resourceVersion"]
    assert dev_ins.content["spec"]["properties"][0]["desired"] == {"value": "30"}
    assert dm_ins.resource == "default/devicemodel/temperature-model"
    assert dm_ins.resourceversion == mdl["metadata"]["resourceVersion"]
    (members,) = memberships(e1)
    assert members["added_devices"] == [
        {"id": "default/temperature-instance", "name": "temperature-instance"}
    ]
    assert members["removed_devices"] is None
    # shapes against the recorded cloudcore frames (seq 91, 92, 94 of the KubeEdge session)
    rec = {f["seq"]: f["msg"] for f in capture() if f["seq"] in (91, 92, 94)}
    ours = {91: next(m for m in e1.received if m.resource == "membership"), 92: dm_ins, 94: dev_ins}
    for seq, msg in ours.items():
        wire = msg.to_dict() if hasattr(msg, "to_dict") else None
        route = rec[seq]["route"]
        assert (msg.source, msg.group, msg.operation) == (route["source"], route["group"], route["operation"])
        assert (
            msg.resource.split("/")[1:2] == route["resource"].split("/")[1:2]
            or msg.resource == route["resource"]
        )
        assert bool(msg.resourceversion) == ("resourceversion" in rec[seq]["header"])
        if isinstance(rec[seq]["content"], dict) and seq == 91:
            assert set(msg.content) == set(rec[seq]["content"]), wire
            entry_keys = {k for d in msg.content["added_devices"] for k in d}
            assert entry_keys <= {"id", "name", "description"}
    assert not other.received or not [
        m for m in other.received if m.resource.split("/")[1:2] in (["device"], ["devicemodel"])
    ]
    # acked like pods and persisted as ObjectSyncs of this controller
    uid = dev["metadata"]["uid"]
    await eventually_async(lambda: devices.ctl.acks.get("edge-node", uid), what="device ack recorded")
    # DeviceStatus: same name, owned by the Device, one twin per property
    st = await eventually_async(
        lambda: get_status("temperature-instance", devices), what="DeviceStatus created"
    )
    refs = st["metadata"]["ownerReferences"]
    assert refs == [
        {
            "apiVersion": "devices.kubeedge.io/v1beta1",
            "kind": "Device",
            "name": "temperature-instance",
            "uid": uid,
            "controller": True,
        }
    ]
    assert st["spec"] == {} and not st.get("status")  # what cloudcore creates


async def test_moving_a_device_removes_it_from_the_old_node(devices: Devices) -> None:
    client = devices.env.client
    a, b = await devices.edge("move-a"), await devices.edge("move-b")
    await client.create(DEVICEMODELS, model())
    created = await client.create(DEVICES, device("mover", "move-a"))
    await eventually_async(lambda: of(a, "device", OP_INSERT), what="device at move-a")
    assert not of(b, "device")
    await client.patch(DEVICES, "mover", {"spec": {"nodeName": "move-b"}}, namespace="default")
    await eventually_async(
        lambda: of(a, "device", OP_DELETE) and of(b, "device", OP_INSERT), what="device moved"
    )
    (gone,) = of(a, "device", OP_DELETE)
    assert gone.content["metadata"]["uid"] == created["metadata"]["uid"]
    assert of(a, "devicemodel", OP_DELETE), "the model is no longer used on move-a"
    assert of(b, "devicemodel", OP_INSERT)
    assert memberships(a)[-1]["removed_devices"] == [{"id": "default/mover", "name": "mover"}]
    assert memberships(b)[-1]["added_devices"] == [{"id": "default/mover", "name": "mover"}]
    # a desired value changed with kubectl reaches the new node only, as an update with the new RV
    await devices.kubectl(
        "patch", "devices.devices.kubeedge.io", "mover", "--type", "merge",
        "-p", json.dumps({"spec": {"properties": [{"name": "temperature", "desired": {"value": "25"}}]}}),
    )  # fmt: skip
    await eventually_async(lambda: of(b, "device", OP_UPDATE), what="device update at move-b")
    assert of(b, "device", OP_UPDATE)[-1].content["spec"]["properties"][0]["desired"]["value"] == "25"
    assert not of(a, "device", OP_UPDATE)


async def test_reconnect_and_restart_send_only_what_changed(devices: Devices) -> None:
    client, env = devices.env.client, devices.env
    edge = await devices.edge("rs-1")
    await client.create(DEVICEMODELS, model())
    await client.create(DEVICES, device("keep", "rs-1"))
    gone = await client.create(DEVICES, device("gone", "rs-1"))
    await eventually_async(lambda: len(of(edge, "device", OP_INSERT)) == 2, what="two devices")
    for d in ("keep", "gone"):
        uid = (await client.get(DEVICES, d, namespace="default"))["metadata"]["uid"]
        await eventually_async(functools.partial(devices.ctl.acks.get, "rs-1", uid), what="acks")
    await eventually_async(
        lambda: devices.ctl.store is not None and devices.ctl.store.backlog == 0, what="acks persisted"
    )
    await edge.stop()
    # offline: one device deleted, the controller restarted (ack state read back from ObjectSyncs)
    devices.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await devices.task
    await client.delete(DEVICES, "gone", namespace="default")
    ctl, task = start_controller(env, devices.cloud)
    devices.ctl, devices.task = ctl, task
    await eventually_async(ctl.synced.is_set, what="restarted controller synced")
    back = await devices.edge("rs-1")
    await eventually_async(
        lambda: of(back, "device", OP_DELETE), what="delete of the device removed while away"
    )
    await asyncio.sleep(1.0)
    assert [m.content["metadata"]["uid"] for m in of(back, "device", OP_DELETE)] == [gone["metadata"]["uid"]]
    assert not of(back, "device", OP_INSERT), "unchanged devices are not sent again"
    assert memberships(back)[-1]["removed_devices"] == [{"id": "default/gone", "name": "gone"}]


async def test_an_unacked_device_is_resent_after_reconnect_and_never_deleted_by_the_edge_controller(
    devices: Devices,
) -> None:
    """Pods and devices share a node's Downlink: on reconnect the edge controller must leave the device
    controller's pending messages alone (it used to plan a delete for every pending key it did not own)."""
    client, env = devices.env.client, devices.env
    silent = await env.edge("unacked-1", devices.cloud, auto_ack=False)
    await client.create(DEVICEMODELS, model())
    created = await client.create(DEVICES, device("pending", "unacked-1"))
    await eventually_async(lambda: of(silent, "device", OP_INSERT), what="device insert (not acked)")
    assert devices.cloud.hub.pending_acks("unacked-1") == 2  # the device and its model
    await silent.stop()
    back = await devices.edge("unacked-1")
    await eventually_async(lambda: of(back, "device", OP_INSERT), what="device re-sent after reconnect")
    await eventually_async(lambda: devices.cloud.hub.pending_acks("unacked-1") == 0, what="acked")
    assert not [m for m in back.received if m.operation == OP_DELETE], [m.resource for m in back.received]
    assert devices.ctl.acks.get("unacked-1", created["metadata"]["uid"])


async def test_a_kubeedge_peer_gets_its_devices_and_its_edgecore_acks_count(devices: Devices) -> None:
    """A raw websocket peer as edgecore is (no kedge headers): it receives the trio, acks Device and
    DeviceModel as edgecore acked them in the recording (source meta, group twin), its recorded
    membership/detail request goes unanswered as cloudcore left it, and its edge_updated reaches the API."""
    from websockets.asyncio.client import connect

    from runtime.protocol import decode, encode

    node, client = "ke-edge-1", devices.env.client
    frames = capture()
    tls = devices.env.tls
    url = f"wss://{devices.cloud.address}/e632aba927ea4ac2b575ec1603d56f10/{node}/events"
    headers = {"node_id": node, "project_id": "e632aba927ea4ac2b575ec1603d56f10", "ConnectionUse": "msg"}
    got: list[Message] = []
    async with connect(
        url,
        ssl=tls.client_context(tls.client(node)),
        additional_headers=headers,
        proxy=None,
        ping_interval=None,
    ) as ws:
        await eventually_async(lambda: devices.cloud.hub.connected(node), what="session")
        await ws.send(json.dumps(next(f["msg"] for f in frames if f["seq"] == 2)))  # membership/detail get
        await client.create(DEVICEMODELS, model())
        created = await client.create(DEVICES, device("ke-dev", node))

        async def read_until_device() -> None:
            while not {"default/device/ke-dev", "membership"} <= {m.resource for m in got}:
                msg = decode(await ws.recv())
                got.append(msg)
                if msg.resourceversion:  # reliable: ack as edgecore did (recorded seq 95)
                    rec = next(f["msg"] for f in frames if f["seq"] == 95)
                    reply = {**rec, "header": {**rec["header"], "parent_msg_id": msg.msg_id}}
                    reply["route"] = {**rec["route"], "resource": msg.resource}
                    await ws.send(json.dumps(reply))

        await asyncio.wait_for(read_until_device(), 10)
        uid = created["metadata"]["uid"]
        await eventually_async(lambda: devices.ctl.acks.get(node, uid), what="edgecore-style ack recorded")
        (members,) = [m.content for m in got if m.resource == "membership"]
        assert set(members) == set(next(f["msg"]["content"] for f in frames if f["seq"] == 91))
        assert members["added_devices"] == [{"id": "default/ke-dev", "name": "ke-dev"}]
        assert not [m for m in got if m.operation == "response"], "membership/detail is not answered"
        await eventually_async(lambda: get_status("ke-dev", devices), what="DeviceStatus")
        await ws.send(encode(twin_report("ke-dev", {"temperature": actual("19")})))
        await eventually_async(
            lambda: reported_is(devices, "ke-dev", "19"), what="edgecore's report in DeviceStatus"
        )
