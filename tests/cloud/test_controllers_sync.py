"""Disconnect and autonomy with the embedded node-lifecycle controller running; resync after a cloud
restart (from ObjectSync ack state) and after a new cache epoch."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from runtime.cloud.controllers.liveness import ANN_OWNER, CONDITION, TAINT_KEY
from runtime.kube.resources import CONFIGMAPS, LEASES, NODES, OBJECTSYNCS, PODS
from runtime.protocol import OP_INSERT, OP_PATCH
from tests.cloud.test_controllers import pod
from tests.fixtures.cloudctl import CloudEnv, Edge
from tests.fixtures.wait import eventually_async

READY = {"type": "Ready", "status": "True", "reason": "EdgeReady", "message": "edge is posting ready status"}


def cond(node: dict[str, Any], typ: str) -> str | None:
    for c in node.get("status", {}).get("conditions") or []:
        if c["type"] == typ:
            return str(c["status"])
    return None


def taints(node: dict[str, Any]) -> set[str]:
    return {t["key"] for t in node.get("spec", {}).get("taints") or []}


async def ready(e: Edge, **report: str) -> None:
    """The edge reports its Ready (READY, or with ``report``'s fields instead)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    c = {**READY, **report, "lastHeartbeatTime": now, "lastTransitionTime": now}
    r = await e.request(OP_PATCH, f"null/nodepatch/{e.node}", json.dumps({"status": {"conditions": [c]}}))
    assert r.content["Err"] is None


async def test_disconnect_taints_keeps_lease_and_ready_then_reconnect_clears(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    grace = env.cp.node_grace
    cloud = await env.cloud()
    e = await env.edge("auto-1", cloud)
    await env.register(e)
    await ready(e)
    await client.create(PODS, pod("keep", "auto-1"))
    await eventually_async(lambda: e.got(OP_INSERT, "pod"), what="pod at the edge")

    async def node() -> dict[str, Any]:
        return await client.get(NODES, "auto-1")

    await eventually_async(
        lambda: _true(node, lambda n: cond(n, CONDITION) == "True"), what="EdgeConnected=True"
    )
    await e.stop()
    t0 = time.monotonic()
    await eventually_async(
        lambda: _true(node, lambda n: TAINT_KEY in taints(n) and cond(n, CONDITION) == "False"),
        within=30,
        what="disconnected taint",
    )
    assert time.monotonic() - t0 < 30
    n = await node()
    taint = next(t for t in n["spec"]["taints"] if t["key"] == TAINT_KEY)
    assert taint["effect"] == "NoSchedule"
    assert "node.kubernetes.io/unreachable" not in taints(n)
    assert n["metadata"]["annotations"][ANN_OWNER] == cloud.ctl.identity
    # across 2 x node-monitor-grace: lease renewed, Ready stays True, no unreachable taint, pod kept
    renewals = set()
    end = time.monotonic() + 2 * grace + 1
    while time.monotonic() < end:
        n = await node()
        assert cond(n, "Ready") == "True", n["status"]["conditions"]
        assert "node.kubernetes.io/unreachable" not in taints(n)
        lease = await client.get(LEASES, "auto-1", namespace="kube-node-lease")
        renewals.add(lease["spec"]["renewTime"])
        await asyncio.sleep(0.2)  # the thing under test: Ready holds across the whole window
    assert len(renewals) >= 3, renewals
    assert (await client.get(PODS, "keep", namespace="default"))["metadata"].get("deletionTimestamp") is None
    # reconnect: taint gone, EdgeConnected=True
    await env.edge("auto-1", cloud)
    await eventually_async(
        lambda: _true(node, lambda n: TAINT_KEY not in taints(n) and cond(n, CONDITION) == "True"),
        what="taint removed on reconnect",
    )


async def _true(get: Any, pred: Any) -> bool:
    return bool(pred(await get()))


async def test_cloud_restart_resyncs_only_changes_and_new_epoch_resends_all(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    a = await env.cloud("replica-a")
    e = await env.edge("rs-1", a, epoch="epoch-1")
    await env.register(e)
    await client.create(CONFIGMAPS, {"metadata": {"name": "c1", "namespace": "default"}, "data": {"k": "v"}})
    for name in ("p1", "p2", "p3"):
        await client.create(PODS, pod(name, "rs-1", cm="c1"))
    edge_ctl = a.ctl.edge
    assert edge_ctl is not None
    want = 6  # node, 3 pods, c1, kube-root-ca.crt
    await eventually_async(lambda: len(a.ctl.world.desired("rs-1")) == want, what="pods in the cloud's view")
    await eventually_async(
        lambda: len(edge_ctl.acks.for_node("rs-1")) == want and a.hub.pending_acks() == 0,
        what="everything acked",
    )

    async def persisted() -> bool:
        found = await client.list(OBJECTSYNCS, namespace="kubeedge")
        acked = {i["metadata"]["name"]: i.get("status", {}).get("objectResourceVersion") for i in found.items}
        return all(
            acked.get(f"rs-1.{uid}") == entry.rv for uid, entry in edge_ctl.acks.for_node("rs-1").items()
        )

    await eventually_async(persisted, what="ack state persisted")
    await e.stop()
    await a.stop()
    label = {"metadata": {"labels": {"changed": "yes"}}}
    changed = await client.patch(PODS, "p2", label, namespace="default")
    b = await env.cloud("replica-b")
    e2 = await env.edge("rs-1", b, epoch="epoch-1")
    await eventually_async(
        lambda: any(m.resource == "default/pod/p2" for m in e2.received), what="changed pod"
    )
    await asyncio.sleep(1.0)  # anything else would have come by now
    pods = [m for m in e2.received if "/pod/" in m.resource]
    assert [(m.operation, m.resource, m.resourceversion) for m in pods] == [
        ("update", "default/pod/p2", changed["metadata"]["resourceVersion"])
    ]
    others = {(m.operation, m.resource) for m in e2.received if "/pod/" not in m.resource}
    assert others <= {("update", "null/node/rs-1")}, others  # the Node changed too (session owner b)
    # a new cache epoch (the edge's cache was rebuilt): everything again, as inserts
    await e2.stop()
    await eventually_async(lambda: not b.hub.connected("rs-1"), what="edge gone")
    e3 = await env.edge("rs-1", b, epoch="epoch-2")
    await eventually_async(lambda: len(e3.got(OP_INSERT)) >= want, what="full resend")
    await asyncio.sleep(0.5)  # the thing under test: no more than the full resend arrives
    assert sorted(m.resource for m in e3.got(OP_INSERT)) == sorted(
        c.resource for c in b.ctl.world.desired("rs-1").values()
    )
