"""Node object and nodepatch content (pure), and the cache-backed RefResolver online and offline."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

from runtime.edge import nodeinfo
from runtime.edge.cacherefs import CacheRefs
from runtime.edge.edgehub import EdgeHub
from runtime.edge.engine import EngineWatch
from runtime.edge.metastore import MetaStore
from runtime.edge.nodestatus import status_patch
from runtime.edge.pods import status as pod_status
from runtime.edge.run import EdgeRuntime
from runtime.kube.resources import CONFIGMAPS
from runtime.protocol import Message
from tests.fixtures.edge import RecordedCloud, make_edge_root, running
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

FACTS = nodeinfo.Facts(
    hostname="h",
    ip="192.0.2.2",
    cpus=2,
    memory_ki=24684092,
    disk_bytes=264212084 * 1024,
    disk_free_bytes=100 << 30,
    mem_available_ki=1 << 24,
    machine_id="m",
    system_uuid="s",
    boot_id="b",
    kernel="6.1",
    os_image="Debian",
    arch="amd64",
)


def test_node_matches_recorded_quantities_and_taint() -> None:
    node = nodeinfo.build_node(
        "ke-edge-1",
        FACTS,
        labels={"zone": "a"},
        with_edge_taint=True,
        taints=["dedicated=iot:NoExecute"],
        now="2026-11-28T09:32:38Z",
    )
    st = node["status"]
    # the recorded edgecore on the same memory/disk figures (capture seq 6)
    assert st["capacity"]["memory"] == "24684092Ki" and st["allocatable"]["memory"] == "24581692Ki"
    assert st["capacity"]["ephemeral-storage"] == "264212084Ki"
    assert st["allocatable"]["ephemeral-storage"] == "243497856212"
    assert node["spec"]["taints"] == [
        {"key": "dedicated", "value": "iot", "effect": "NoExecute"},
        {"key": "node-role.kubernetes.io/edge", "effect": "NoSchedule"},
    ]
    assert node["metadata"]["labels"]["zone"] == "a"
    assert [c["type"] for c in st["conditions"]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]


def test_status_patch_sends_heartbeats_and_only_changes() -> None:
    first = nodeinfo.node_status(FACTS, "2026-11-28T09:32:38Z")
    full = json.loads(status_patch(None, first))["status"]
    assert {"capacity", "allocatable", "addresses", "nodeInfo", "conditions"} <= set(full)
    later = nodeinfo.node_status(FACTS, "2026-11-28T09:33:38Z", first["conditions"])
    beat = json.loads(status_patch(first, later))["status"]
    assert set(beat) == {"$setElementOrder/conditions", "conditions"}
    assert all(set(c) == {"type", "lastHeartbeatTime"} for c in beat["conditions"])
    low_disk = nodeinfo.Facts(**{**FACTS.__dict__, "disk_free_bytes": 1 << 20})
    pressured = nodeinfo.node_status(low_disk, "2026-11-28T09:34:38Z", later["conditions"])
    changed = {c["type"]: c for c in json.loads(status_patch(later, pressured))["status"]["conditions"]}
    assert changed["DiskPressure"]["status"] == "True"
    assert changed["DiskPressure"]["lastTransitionTime"] == "2026-11-28T09:34:38Z"
    assert set(changed["Ready"]) == {"type", "lastHeartbeatTime"}


async def test_refs_query_online_and_serve_the_cache_offline(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    ctl = recorded_cloud.ctl
    # the cloud answers a node only for what a pod bound to it references (the node authorizer)
    await ctl.client.create(
        CONFIGMAPS, {"metadata": {"name": "cm1"}, "data": {"k": "v"}}, namespace="default"
    )
    volume = {"name": "v", "configMap": {"name": "cm1"}}
    container = {"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}
    spec = {"nodeName": "refs-1", "containers": [container], "volumes": [volume]}
    await ctl.bind_pod({"metadata": {"name": "uses-cm1", "namespace": "default"}, "spec": spec})
    cfg = make_edge_root(tmp_path, tls_certs, "refs-1", recorded_cloud.server)
    async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
        await eventually_async(lambda: rt.hub is not None and rt.hub.connected, 15, "connected")
        assert rt.store is not None and rt.hub is not None
        cm = await CacheRefs(rt.store, rt.hub).configmap("default", "cm1")
        assert cm is not None and cm["data"] == {"k": "v"}
        assert [m.resource for m in ctl.requests if m.operation == "query"] == ["default/configmap/cm1"]
    await recorded_cloud.hub.stop()  # the cloud is gone: the cache serves
    store = await MetaStore.open(Path(cfg.cache.db))

    async def ignore(_: Message) -> None:
        return None

    offline = EdgeHub(
        "127.0.0.1:1",
        "refs-1",
        on_message=ignore,
        outbox_path=tmp_path / "o.db",
        ssl_context=tls_certs.client_context(None),
    )  # never started: offline
    try:
        refs = CacheRefs(store, offline)
        cached = await refs.configmap("default", "cm1")
        assert cached is not None and cached["data"] == {"k": "v"}
        assert await refs.secret("default", "nope") is None
        assert await refs.sa_token("default", "default", {"metadata": {"uid": "u"}}, 3607, None) is None
    finally:
        await store.close()


def test_a_runtime_that_is_down_makes_the_node_not_ready_and_back() -> None:
    down = dataclasses.replace(FACTS, runtime_down="Docker engine unix:///x: [Errno 111] Connection refused")
    first = nodeinfo.node_status(FACTS, "2026-11-28T09:32:38Z")
    second = nodeinfo.node_status(down, "2026-11-28T09:32:48Z", first["conditions"])
    ready = {c["type"]: c for c in second["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady"), ready
    assert ready["message"].startswith("container runtime is down: Docker engine unix:///x")
    assert ready["lastTransitionTime"] == "2026-11-28T09:32:48Z"
    assert json.loads(status_patch(first, second))["status"]["conditions"][-1]["status"] == "False"
    back = nodeinfo.node_status(FACTS, "2026-11-28T09:32:58Z", second["conditions"])
    assert {c["type"]: c for c in back["conditions"]}["Ready"]["status"] == "True"


async def test_engine_watch_says_down_at_once_for_a_refused_socket_and_calls_back(tmp_path: Path) -> None:
    flips: list[str] = []
    watch = EngineWatch(f"unix://{tmp_path / 'none.sock'}", lambda: flips.append(watch.down))
    await watch.probe()
    assert "none.sock" in watch.down and len(flips) == 1
    await watch.probe()
    assert len(flips) == 1  # no flip, no call


def test_pod_status_while_the_runtime_is_down_is_not_ready_and_keeps_the_rest() -> None:
    st = {
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": "t0"},
            {"type": "Ready", "status": "True", "lastTransitionTime": "t0"},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": "t0"},
        ],
        "containerStatuses": [{"name": "app", "ready": True, "state": {"running": {}}, "restartCount": 0}],
    }
    down = pod_status.runtime_down(st, "t1")
    conds = {c["type"]: c for c in down["conditions"]}
    assert conds["Ready"]["status"] == conds["ContainersReady"]["status"] == "False"
    assert conds["Ready"]["lastTransitionTime"] == "t1" and conds["Initialized"] == st["conditions"][0]
    assert conds["Ready"]["message"] == "container runtime is down"
    assert down["phase"] == "Running" and down["containerStatuses"][0]["ready"] is False
    assert down["containerStatuses"][0]["state"] == {"running": {}}
    assert pod_status.runtime_down(down, "t2") == down  # stable: reported once


async def test_engine_watch_waits_for_patience_timeouts_from_a_silent_engine(tmp_path: Path) -> None:
    """An engine that accepts and never answers (busy) is down only after `patience` timeouts in a row."""
    sock = tmp_path / "silent.sock"
    held: list[asyncio.StreamWriter] = []
    server = await asyncio.start_unix_server(lambda _r, w: held.append(w), path=str(sock))
    try:
        watch = EngineWatch(f"unix://{sock}", every=0.1, patience=3)
        for _ in range(2):
            await watch.probe()
            assert watch.down == ""
        await watch.probe()
        assert watch.down.endswith("TimeoutError"), watch.down
    finally:
        server.close()
        for w in held:
            w.close()
