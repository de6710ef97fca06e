"""Renewals before new work (the admission gate) and Ready put back after the node-lifecycle controller
marked a held kedge node Unknown."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from runtime.cloud.admission import Admission
from runtime.cloud.controllers.readiness import ReadyRestorer
from runtime.cloud.controllers.world import EDGE_LABEL, World
from runtime.kube.client import KubeClient
from runtime.kube.resources import NODES
from tests.cloud.test_controllers_sync import cond, ready
from tests.fixtures.cloudctl import CloudEnv, until


def _node(name: str, rv: str, status: str, reason: str) -> dict[str, Any]:
    c = {"type": "Ready", "status": status, "reason": reason}
    return {
        "metadata": {"name": name, "resourceVersion": rv, "labels": {EDGE_LABEL: ""}},
        "status": {"conditions": [c]},
    }


def test_ready_restore_is_due_only_for_held_kedge_nodes_with_a_reported_ready() -> None:
    world = World()
    for name in ("kedge-held", "kubeedge-held", "not-held", "never-ready"):
        if name != "never-ready":
            world.apply("Node", "ADDED", _node(name, "1", "True", "EdgeReady"))
        world.apply("Node", "MODIFIED", _node(name, "2", "Unknown", "NodeStatusUnknown"))
    assert world.last_ready["kedge-held"]["status"] == "True"
    assert world.ready_unknown == {"kedge-held", "kubeedge-held", "not-held", "never-ready"}
    held = {
        "kedge-held": SimpleNamespace(peer_kind="kedge"),
        "kubeedge-held": SimpleNamespace(peer_kind="kubeedge"),
        "never-ready": SimpleNamespace(peer_kind="kedge"),
    }
    r = ReadyRestorer(KubeClient.__new__(KubeClient), world, lambda: held)
    assert r.due() == ["kedge-held"]
    r._tried["kedge-held"] = "2"  # patched from rv 2: not again until the Node changes
    assert r.due() == []
    world.apply("Node", "MODIFIED", _node("kedge-held", "3", "Unknown", "NodeStatusUnknown"))
    assert r.due() == ["kedge-held"]
    # the edge's own Unknown (not the lifecycle controller's) is a report like any other
    world.apply("Node", "MODIFIED", _node("kedge-held", "4", "Unknown", "EdgeUnknown"))
    assert r.due() == [] and world.last_ready["kedge-held"]["reason"] == "EdgeUnknown"


async def test_admission_holds_while_renewals_lag() -> None:
    lag = [30.0]
    gate = Admission(lambda: lag[0], threshold=10.0, poll=0.02, max_wait=5.0)
    held = asyncio.create_task(gate())
    await asyncio.sleep(0.2)
    assert not held.done() and gate.waiting == 1 and gate.delayed == 1
    lag[0] = 1.0
    assert await asyncio.wait_for(held, 2) >= 0.2
    assert gate.waiting == 0
    assert await gate() == 0.0 and gate.delayed == 1  # keeping up: no wait, not counted
    lag[0] = 30.0
    short = Admission(lambda: lag[0], threshold=10.0, poll=0.02, max_wait=0.1)
    assert 0.1 <= await asyncio.wait_for(short(), 2) < 1.0  # bounded: a lagging cloud still admits


async def test_new_sessions_wait_while_renewals_lag(cloudenv: CloudEnv) -> None:
    env = cloudenv
    cloud = await env.cloud()
    lag = [60.0]
    cloud.ctl.admission.lag = lambda: lag[0]
    await env.edge("gate-1", cloud, wait=False)
    await until(lambda: cloud.ctl.admission.waiting == 1, what="session held at the gate")
    await asyncio.sleep(1.0)
    assert not cloud.hub.connected("gate-1")
    assert cloud.ctl.status()["counters"]["admissionsWaiting"] == 1
    lag[0] = 0.0
    await until(lambda: cloud.hub.connected("gate-1"), what="session admitted once renewals caught up")
    assert cloud.ctl.status()["counters"]["admissionsDelayed"] == 1


async def test_lifecycle_unknown_ready_gets_the_last_reported_ready_back(cloudenv: CloudEnv) -> None:
    """A Lease renewed too rarely for the (test-short) node-monitor grace: the embedded node-lifecycle
    controller sets Ready=Unknown; the cloud puts the edge's last report back."""
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud(lease_renew=3600.0)
    e = await env.edge("unk-1", cloud)
    await env.register(e)
    await ready(e)
    seen: list[str] = []

    async def watch() -> None:
        """Every Ready the API stored, from a watch (a poll can miss an Unknown restored within ms)."""
        start = (await client.get(NODES, "unk-1"))["metadata"]["resourceVersion"]
        async for ev in client.watch_stream(NODES, fields={"metadata.name": "unk-1"}, resource_version=start):
            conds = (ev.object.get("status") or {}).get("conditions") or []
            c = next((c for c in conds if c["type"] == "Ready"), None)
            if c is not None:
                seen.append(f"{c['status']}/{c.get('reason')}")

    poll = asyncio.create_task(watch())
    try:
        await until(lambda: cloud.ctl.ready.restored >= 1, within=20 + 4 * env.cp.node_grace, what="restored")
        await until(lambda: bool(seen) and seen[-1] == "True/EdgeReady", what="Ready=True as reported")
    finally:
        poll.cancel()
    assert "Unknown/NodeStatusUnknown" in seen, seen
    n = await client.get(NODES, "unk-1")
    assert cond(n, "Ready") == "True"
