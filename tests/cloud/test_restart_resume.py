"""A restarted cloud is its predecessor: same replica identity, so it resumes the nodes it held at once
(no wait for its old replica Lease to expire), and renews the Leases closest to expiry first."""

from __future__ import annotations

import time

from runtime.cloud.controllers.liveness import ANN_OWNER, TAINT_KEY, NodeLiveness
from runtime.cloud.controllers.world import EDGE_LABEL, World
from runtime.kube.client import KubeClient
from runtime.kube.resources import LEASES, NODES
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.wait import eventually_async


async def test_a_restarted_replica_resumes_its_nodes_without_waiting_for_its_old_lease(
    cloudenv: CloudEnv,
) -> None:
    env, client = cloudenv, cloudenv.client
    slow = {"replica_duration": 60.0}  # a takeover by expiry would take a minute: the test waits 15 s
    a = await env.cloud("same-id", **slow)
    e = await env.edge("rs-1", a)
    await env.register(e)

    async def owned_by_a() -> bool:
        node = await client.get(NODES, "rs-1")
        leases = await client.list(LEASES, namespace="kube-node-lease")
        mine = node["metadata"]["annotations"].get(ANN_OWNER) == "same-id"
        return mine and "rs-1" in {i["metadata"]["name"] for i in leases.items}

    await eventually_async(owned_by_a, what="same-id owns rs-1 and renews its Lease")
    await a.stop()  # killed: its replica Lease stays behind, unexpired
    await e.stop()  # the edge does not come back: only the resume renews its Lease
    before = (await client.get(LEASES, "rs-1", namespace="kube-node-lease"))["spec"]["renewTime"]
    b = await env.cloud("same-id", **slow)

    async def renewed_by_b() -> bool:
        lease = await client.get(LEASES, "rs-1", namespace="kube-node-lease")
        return "rs-1" in b.ctl.liveness.owned() and lease["spec"]["renewTime"] != before

    await eventually_async(renewed_by_b, within=15, what="the restarted replica renews rs-1's Lease")
    assert b.ctl.replicas.taken_over == []  # resumed as its own, not taken over as a dead peer's
    node = await client.get(NODES, "rs-1")  # the disconnect mark waits: the edge may still come back
    assert TAINT_KEY not in {t["key"] for t in node["spec"].get("taints") or []}


async def test_adopted_leases_renew_oldest_first(kube: KubeClient) -> None:
    """Nodes held after a restart or a takeover are scheduled by their Lease's age, not arrival order."""
    world = World()
    ages = {"age-2": 2.0, "age-25": 25.0, "age-9": 9.0, "age-none": None}
    for name in ages:
        body = {"metadata": {"name": name, "labels": {EDGE_LABEL: ""}, "annotations": {ANN_OWNER: "r"}}}
        world.apply("Node", "ADDED", await kube.create(NODES, body))
    live = NodeLiveness(kube, world, "r", renew_every=10.0, lease_seconds=40)
    now = time.time()
    for name, age in ages.items():  # arrival order: newest first
        live.adopt(name, now, None if age is None else now - age)
    later = time.monotonic() + 1.5
    order = [live._pop_due(later) for _ in ages]
    # period 10 s: 25 s old is overdue, unknown age is due now, 9 s old in 1 s, 2 s old not before 8 s
    assert order == ["age-25", "age-none", "age-9", None], order
    assert live._pop_due(time.monotonic() + 9.0) == "age-2"
