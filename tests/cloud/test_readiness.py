"""Renewals before new work (the admission gate) and Ready put back after the node-lifecycle controller
marked a held kedge node Unknown."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from runtime.cloud.controllers.leases import ANN_LAST_READY, LEASE_NS, note_of, note_text, ready_from_text
from runtime.cloud.controllers.readiness import ReadyRestorer
from runtime.cloud.controllers.world import EDGE_LABEL, World
from runtime.cloud.lease_gate import LeaseGate
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import LEASES, NODES
from tests.cloud.test_controllers_sync import READY, cond, ready
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.wait import eventually_async


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
    gate = LeaseGate(lambda: lag[0], threshold=10.0, poll=0.02, max_wait=5.0)
    held = asyncio.create_task(gate())
    await asyncio.sleep(0.2)  # the thing under test: held while renewals lag
    assert not held.done() and gate.waiting == 1 and gate.delayed == 1
    lag[0] = 1.0
    assert await asyncio.wait_for(held, 2) >= 0.2
    assert gate.waiting == 0
    assert await gate() == 0.0 and gate.delayed == 1  # keeping up: no wait, not counted
    lag[0] = 30.0
    short = LeaseGate(lambda: lag[0], threshold=10.0, poll=0.02, max_wait=0.1)
    assert 0.1 <= await asyncio.wait_for(short(), 2) < 1.0  # bounded: a lagging cloud still admits


async def test_new_sessions_wait_while_renewals_lag(cloudenv: CloudEnv) -> None:
    env = cloudenv
    cloud = await env.cloud()
    lag = [60.0]
    cloud.ctl.admission.lag = lambda: lag[0]
    await env.edge("gate-1", cloud, wait=False)
    await eventually_async(lambda: cloud.ctl.admission.waiting == 1, what="session held at the gate")
    await asyncio.sleep(1.0)  # the thing under test: the session stays held while renewals lag
    assert not cloud.hub.connected("gate-1")
    assert cloud.ctl.status()["counters"]["admissionsWaiting"] == 1
    lag[0] = 0.0
    await eventually_async(
        lambda: cloud.hub.connected("gate-1"), what="session admitted once renewals caught up"
    )
    assert cloud.ctl.status()["counters"]["admissionsDelayed"] == 1


async def watch_ready(client: KubeClient, node: str, seen: list[dict[str, Any]]) -> None:
    """Every Ready the API stores for ``node`` from now on, from a watch (a poll can miss an Unknown
    restored within ms)."""
    start = (await client.get(NODES, node))["metadata"]["resourceVersion"]
    async for ev in client.watch_stream(NODES, fields={"metadata.name": node}, resource_version=start):
        conds = (ev.object.get("status") or {}).get("conditions") or []
        c = next((c for c in conds if c["type"] == "Ready"), None)
        if c is not None:
            seen.append(c)


def brief(c: dict[str, Any]) -> str:
    return f"{c['status']}/{c.get('reason')}"


async def test_lifecycle_unknown_ready_gets_the_last_reported_ready_back(cloudenv: CloudEnv) -> None:
    """A Lease renewed too rarely for the (test-short) node-monitor grace: the embedded node-lifecycle
    controller sets Ready=Unknown; the cloud puts the edge's last report back."""
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud(lease_renew=3600.0)
    e = await env.edge("unk-1", cloud)
    await env.register(e)
    await ready(e)
    seen: list[dict[str, Any]] = []
    poll = asyncio.create_task(watch_ready(client, "unk-1", seen))
    try:
        await eventually_async(
            lambda: cloud.ctl.ready.restored >= 1, within=20 + 4 * env.cp.node_grace, what="restored"
        )
        await eventually_async(
            lambda: bool(seen) and brief(seen[-1]) == "True/EdgeReady", what="Ready=True as reported"
        )
    finally:
        poll.cancel()
    assert "Unknown/NodeStatusUnknown" in [brief(c) for c in seen], seen
    n = await client.get(NODES, "unk-1")
    assert cond(n, "Ready") == "True"


def test_last_ready_note_is_compact_and_malformed_notes_are_ignored() -> None:
    text = note_text(note_of({**READY, "lastHeartbeatTime": "2026-01-01T00:00:00Z"}))
    assert text == '{"status":"True","reason":"EdgeReady","message":"edge is posting ready status"}'
    assert ready_from_text(text) == READY
    assert ready_from_text('{"status":"False"}') == {"type": "Ready", "status": "False"}
    for bad in (None, "", "not json", "[]", '{"status":"Maybe"}', '{"reason":"EdgeReady"}'):
        assert ready_from_text(bad) is None, bad


async def test_lease_carries_the_last_ready_only_when_the_report_changes(cloudenv: CloudEnv) -> None:
    """The annotation rides in renewals the cloud makes anyway: written with the first renewal after a
    report changed Ready, never again while it stays (the steady-state body is the plain renewTime one)."""
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    leases = cloud.ctl.liveness.leases
    e = await env.edge("note-1", cloud)
    await env.register(e)
    await ready(e)

    async def carries(want: dict[str, str]) -> bool:
        try:
            lease = await client.get(LEASES, "note-1", namespace=LEASE_NS)
        except KubeNotFound:  # not created yet
            return False
        return ready_from_text((lease["metadata"].get("annotations") or {}).get(ANN_LAST_READY)) == want

    await eventually_async(lambda: carries(READY), what="the reported Ready on the Lease")
    notes, writes = leases.notes, leases.writes
    await eventually_async(lambda: leases.writes >= writes + 4, what="four more renewals")
    assert leases.notes == notes  # unchanged report: plain renewals
    changed = {"type": "Ready", "status": "False", "reason": "EdgeNotReady", "message": "runtime down"}
    await ready(e, **changed)
    await eventually_async(lambda: carries(changed), what="the changed report on the Lease")
    assert leases.notes == notes + 1


async def test_restarted_cloud_puts_back_the_ready_reported_before_it_started(cloudenv: CloudEnv) -> None:
    """The cloud's memory of the last report dies with it. The cloud goes away until the node-lifecycle
    controller marks the node Unknown; a NEW cloud starts, the edge comes back without re-sending its
    status (a kedge edge sends only changes): Ready is the last report again, reason and message too."""
    env, client = cloudenv, cloudenv.client
    old = await env.cloud("a")
    e = await env.edge("rst-1", old, epoch="ep-1")
    await env.register(e)
    await ready(e)
    await eventually_async(
        lambda: brief(old.ctl.world.last_ready.get("rst-1") or {"status": ""}) == "True/EdgeReady"
    )
    writes = old.ctl.liveness.lease_writes
    await eventually_async(
        lambda: old.ctl.liveness.lease_writes >= writes + 2, what="renewals after the report"
    )
    await old.stop()
    await e.stop()

    async def unknown() -> bool:
        n = await client.get(NODES, "rst-1")
        c = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
        return brief(c) == "Unknown/NodeStatusUnknown"

    await eventually_async(
        unknown, within=20 + 4 * env.cp.node_grace, what="Ready=Unknown while no cloud renews"
    )
    new = await env.cloud("a")
    assert "rst-1" in new.ctl.world.ready_unknown and "rst-1" not in new.ctl.world.last_ready
    seen: list[dict[str, Any]] = []
    poll = asyncio.create_task(watch_ready(client, "rst-1", seen))
    try:
        await env.edge("rst-1", new, epoch="ep-1")  # the edge back, nothing re-sent
        await eventually_async(
            lambda: bool(seen) and brief(seen[-1]) == "True/EdgeReady", what="Ready as last reported"
        )
    finally:
        poll.cancel()
    assert {k: seen[-1].get(k) for k in READY} == READY
    n = await client.get(NODES, "rst-1")
    assert cond(n, "Ready") == "True" and new.ctl.ready.recalled == 1
