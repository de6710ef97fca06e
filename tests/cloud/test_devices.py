"""The Device controller against the embedded control plane, a real CloudHub and real EdgeHubs.

Devices and DeviceModels reach the node in spec.nodeName (with the membership update, in the recorded
KubeEdge shapes), move between nodes, and DeviceStatus is created, written from the edge's reports
(only by the node the Device is bound to) and removed with the Device.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml

from runtime.cloud.controllers.syncstore import SyncStore
from runtime.cloud.devices import ACK_OWNER, DeviceController
from runtime.kube.client import KubeClient, make_client
from runtime.kube.errors import AlreadyExists, KubeNotFound, error_for_status
from runtime.kube.resources import CRDS, DEVICEMODELS, DEVICES, DEVICESTATUSES, load_yaml
from runtime.protocol import GROUP_RESOURCE, OP_DELETE, OP_INSERT, OP_UPDATE, Message, new_message
from runtime.templates import templates_dir
from tests.fixtures.cloudctl import CloudEnv, Edge, Replica, capture
from tests.fixtures.cloudinit import kubectl
from tests.fixtures.wait import eventually_async

SAMPLES = Path(__file__).parent / "data" / "kubeedge-device-samples.yaml"


@dataclass
class Devices:
    env: CloudEnv
    cloud: Replica
    ctl: DeviceController
    task: asyncio.Task[None]

    async def edge(self, node: str) -> Edge:
        return await self.env.edge(node, self.cloud)

    async def kubectl(self, *args: str) -> str:
        """The real kubectl, on a thread: the embedded API server runs in this event loop."""
        return await asyncio.to_thread(kubectl, self.env.cp.kubeconfig, *args)

    async def status(self, name: str, ns: str = "default") -> dict[str, Any]:
        out: dict[str, Any] = json.loads(
            await self.kubectl("get", "devicestatuses", name, "-n", ns, "-o", "json")
        )
        return out


async def install_device_crds(client: KubeClient) -> None:
    for path in sorted((templates_dir() / "crds").glob("devices.kubeedge.io_*.yaml")):
        for doc in load_yaml(path.read_text()):
            with contextlib.suppress(AlreadyExists):
                await client.create(CRDS, doc)

    async def served() -> bool:
        try:
            for res in (DEVICES, DEVICEMODELS, DEVICESTATUSES):
                await client.list(res, namespace="default")
            return True
        except Exception:
            return False

    await eventually_async(served, what="device CRDs served")


def start_controller(
    env: CloudEnv, cloud: Replica, client: KubeClient | None = None
) -> tuple[DeviceController, asyncio.Task[None]]:
    """Wired as runtime/cloud/cloudcore.py wires it: API client, the hub, an ack-state store of its own."""
    client = client or cloud.client
    store = SyncStore(client, "kubeedge", flush_every=0.1, owner=ACK_OWNER, epoch_suffix="device-epoch")
    ctl = DeviceController(client, cloud.hub, store=store, retry_cap=1.0)
    cloud.hub.subscribe(
        on_message=ctl.on_message,
        on_connect=ctl.on_connect,
        on_disconnect=ctl.on_disconnect,
        on_ack=ctl.on_ack,
    )
    return ctl, asyncio.create_task(ctl.run())


@pytest_asyncio.fixture
async def devices(cloudenv: CloudEnv) -> AsyncIterator[Devices]:
    await install_device_crds(cloudenv.client)
    cloud = await cloudenv.cloud()
    ctl, task = start_controller(cloudenv, cloud)
    await eventually_async(ctl.synced.is_set, what="device controller synced")
    try:
        yield Devices(cloudenv, cloud, ctl, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def model(name: str = "thermo") -> dict[str, Any]:
    prop = {"name": "temperature", "type": "INT", "accessMode": "ReadWrite", "maximum": "100"}
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"protocol": "modbus", "properties": [prop]},
    }


def device(name: str, node: str, desired: str = "20", model_name: str = "thermo") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "deviceModelRef": {"name": model_name},
            "nodeName": node,
            "properties": [{"name": "temperature", "desired": {"value": desired}, "reportToCloud": True}],
        },
    }


def of(edge: Edge, typ: str, op: str | None = None) -> list[Message]:
    return [
        m for m in edge.received if m.resource.split("/")[1:2] == [typ] and (op is None or m.operation == op)
    ]


def memberships(edge: Edge) -> list[dict[str, Any]]:
    return [m.content for m in edge.received if m.resource == "membership"]


def twin_report(dev: str, props: dict[str, Any], ns: str = "default") -> Message:
    """What a KubeEdge edge sends when a device reported values (edge_updated, a JSON string body)."""
    body = {"event_id": "e-1", "timestamp": 1795858435617, "twin": props}
    return new_message(
        "twin", GROUP_RESOURCE, OP_UPDATE, f"device/{ns}/{dev}/twin/edge_updated", json.dumps(body)
    )


def state_report(dev: str, state: str, ns: str = "default", **extra: Any) -> Message:
    """As edgecore sends it: a JSON string {event_id, timestamp, device: {name, state, lastOnlineTime?}}."""
    inner = {"name": dev, "state": state, **extra}
    body = json.dumps({"event_id": "e-2", "timestamp": 1795858435617, "device": inner})
    return new_message("twin", GROUP_RESOURCE, OP_UPDATE, f"device/{ns}/{dev}/state/update", body)


def actual(value: str, ts: int = 1795858435000, type_: str = "int") -> dict[str, Any]:
    return {"actual": {"value": value, "metadata": {"timestamp": ts}}, "metadata": {"type": type_}}


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
        lambda: _get_status("temperature-instance", devices), what="DeviceStatus created"
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


async def _get_status(name: str, devices: Devices) -> dict[str, Any] | None:
    try:
        return await devices.env.client.get(DEVICESTATUSES, name, namespace="default")
    except KubeNotFound:
        return None


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


async def test_reports_land_in_devicestatus_and_a_node_cannot_write_another_nodes_device(
    devices: Devices,
) -> None:
    client = devices.env.client
    own, intruder = await devices.edge("rep-1"), await devices.edge("rep-2")
    await client.create(DEVICEMODELS, model())
    await client.create(DEVICES, device("sensor", "rep-1"))
    await eventually_async(lambda: _get_status("sensor", devices), what="DeviceStatus created")
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
    await eventually_async(lambda: _state(devices, "sensor", "online"), what="state online")
    assert (await devices.status("sensor"))["status"]["lastOnlineTime"] == "2026-12-07T11:00:00Z"
    await own.hub.send(state_report("sensor", "offline"))
    await eventually_async(lambda: _state(devices, "sensor", "offline"), what="state offline")
    assert (await devices.status("sensor"))["status"][
        "lastOnlineTime"
    ] == "2026-12-07T11:00:00Z"  # only online/ok
    # another node may not write it
    before = devices.ctl.counters["reportsRefused"]
    await intruder.hub.send(twin_report("sensor", {"temperature": actual("99")}))
    await intruder.hub.send(state_report("sensor", "unhealthy"))
    await eventually_async(lambda: devices.ctl.counters["reportsRefused"] == before + 2, what="both refused")
    await own.hub.send(twin_report("sensor", {"temperature": actual("22", ts=1795858436000)}))
    await eventually_async(lambda: _reported_is(devices, "sensor", "22"), what="own report after refusal")
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
    st = await eventually_async(lambda: _get_status("life", devices), what="DeviceStatus created")
    assert st["metadata"]["ownerReferences"][0]["uid"] == first["metadata"]["uid"]
    # cloudcore writes .status with a merge patch on the main resource: it must stick (no subresource)
    await devices.kubectl(
        "patch", "devicestatuses", "life", "--type", "merge",
        "-p", json.dumps({"status": {"state": "ok", "lastOnlineTime": "2026-12-07T10:00:00Z"}}),
    )  # fmt: skip
    assert (await devices.status("life"))["status"]["state"] == "ok"
    await client.delete(DEVICES, "life", namespace="default")
    await eventually_async(lambda: _gone(devices, "life"), what="DeviceStatus removed with the Device")
    # recreated under the same name: a new DeviceStatus owned by the new Device
    second = await client.create(DEVICES, device("life", "life-1"))
    st2 = await eventually_async(lambda: _get_status("life", devices), what="new DeviceStatus")
    assert st2["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]


async def _state(devices: Devices, name: str, state: str) -> bool:
    return bool((await devices.status(name)).get("status", {}).get("state") == state)


async def _reported_is(devices: Devices, name: str, value: str) -> bool:
    twins = (await devices.status(name)).get("status", {}).get("twins") or [{}]
    return bool(twins[0].get("reported", {}).get("value") == value)


async def _gone(devices: Devices, name: str) -> bool:
    return await _get_status(name, devices) is None


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
        await eventually_async(lambda: _get_status("ke-dev", devices), what="DeviceStatus")
        await ws.send(encode(twin_report("ke-dev", {"temperature": actual("19")})))
        await eventually_async(
            lambda: _reported_is(devices, "ke-dev", "19"), what="edgecore's report in DeviceStatus"
        )


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


def _rbac_verbs() -> dict[str, set[str]]:
    """resource -> verbs the ClusterRole in templates/20-rbac.yaml grants in devices.kubeedge.io."""
    text = (templates_dir() / "20-rbac.yaml").read_text().replace("{{ namespace }}", "kubeedge")
    out: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all(text):
        if doc and doc["kind"] == "ClusterRole":
            for rule in doc["rules"]:
                if "devices.kubeedge.io" in rule["apiGroups"]:
                    for r in rule["resources"]:
                        out.setdefault(r, set()).update(rule["verbs"])
    return out


async def test_the_controller_uses_exactly_the_verbs_rbac_grants(cloudenv: CloudEnv) -> None:
    """Every devices.kubeedge.io call the controller makes through a whole life cycle (list, watch,
    create, report, move, delete) is one the template grants, and every verb granted on devicestatuses
    is used: least privilege, as docs/operations.md states it."""
    await install_device_crds(cloudenv.client)
    cloud = await cloudenv.cloud()
    own = make_client(cloudenv.cp.kubeconfig)
    used: dict[str, set[str]] = {}
    real_request, real_watch = own.request, own.watch_stream

    def note(plural: str, verb: str) -> None:
        used.setdefault(plural, set()).add(verb)

    async def request(method: str, path: str, **kw: Any) -> Any:
        parts = path.strip("/").split("/")
        if len(parts) > 2 and parts[1] == "devices.kubeedge.io":
            plural_at = parts.index("namespaces") + 2 if "namespaces" in parts else 3
            named = len(parts) > plural_at + 1
            verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete", "PUT": "update"}.get(
                method, "get" if named else "list"
            )
            note(parts[plural_at], verb)
        return await real_request(method, path, **kw)

    def watch_stream(res: Any, **kw: Any) -> Any:
        note(res.plural, "watch")
        return real_watch(res, **kw)

    own.request = request  # type: ignore[method-assign]
    own.watch_stream = watch_stream  # type: ignore[method-assign]
    ctl, task = start_controller(cloudenv, cloud, own)
    try:
        await eventually_async(ctl.synced.is_set, what="synced")
        edge = await cloudenv.edge("rbac-1", cloud)
        await cloudenv.client.create(DEVICEMODELS, model())
        await cloudenv.client.create(DEVICES, device("rbac-dev", "rbac-1"))
        await eventually_async(lambda: ctl.statuses.known, what="DeviceStatus created")
        await edge.hub.send(twin_report("rbac-dev", {"temperature": actual("5")}))
        await eventually_async(lambda: ctl.counters["statusWrites"] >= 1, what="status written")
        await cloudenv.client.delete(DEVICES, "rbac-dev", namespace="default")

        async def gone() -> bool:
            try:
                await cloudenv.client.get(DEVICESTATUSES, "rbac-dev", namespace="default")
                return False
            except KubeNotFound:
                return True

        await eventually_async(gone, what="DeviceStatus removed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await own.close()
    granted = _rbac_verbs()
    for plural, verbs in used.items():
        assert verbs <= granted.get(plural, set()), (plural, verbs, granted)
    assert granted["devicestatuses"] == {"get", "create", "patch", "delete"}
    # delete: unless the garbage collector (ownerReference) removed it first
    assert used["devicestatuses"] - {"delete"} == {"get", "create", "patch"}
    assert granted["devices"] == granted["devicemodels"] == {"get", "list", "watch"}
    assert {"list", "watch"} <= used["devices"] and {"list", "watch"} <= used["devicemodels"]


async def test_without_permission_for_devices_the_controller_waits_and_recovers(cloudenv: CloudEnv) -> None:
    """An older install whose RBAC lacks the device rules: the embedded server does not evaluate RBAC,
    so the 403 a kube-apiserver sends is put at the client's boundary for the first lists. The
    controller neither ends (which would stop `kedge cloud run`) nor spins; once allowed it serves."""
    await install_device_crds(cloudenv.client)
    cloud = await cloudenv.cloud()
    own = make_client(cloudenv.cp.kubeconfig)
    real = own.request
    refused = {"n": 0, "allow": False}
    status = {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden",
        "message": 'devices.devices.kubeedge.io is forbidden: User '
        '"system:serviceaccount:kubeedge:kedge-cloud" cannot list resource "devices" in API group '
        '"devices.kubeedge.io" at the cluster scope',
        "details": {"group": "devices.kubeedge.io", "kind": "devices"}, "code": 403,
    }  # fmt: skip

    async def request(method: str, path: str, **kw: Any) -> Any:
        if "/devices.kubeedge.io/" in path and not refused["allow"]:
            refused["n"] += 1
            raise error_for_status(own.server, 403, status)
        return await real(method, path, **kw)

    own.request = request  # type: ignore[method-assign]
    ctl, task = start_controller(cloudenv, cloud, own)
    try:
        await eventually_async(lambda: refused["n"] >= 2, what="device lists refused")
        await asyncio.sleep(0.5)
        assert not task.done() and not ctl.synced.is_set()
        assert refused["n"] <= 6, "retries back off"
        refused["allow"] = True
        edge = await cloudenv.edge("perm-1", cloud)
        await cloudenv.client.create(DEVICES, device("perm-dev", "perm-1"))
        await eventually_async(
            lambda: of(edge, "device", OP_INSERT), within=15, what="device served once allowed"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await own.close()
