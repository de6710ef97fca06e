"""Several cloud replicas on one cluster: each holds its own Lease; when one dies, another takes over its
edges' leases (and marks them disconnected) once the dead replica's Lease expires."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.cloud.controllers.liveness import ANN_OWNER, TAINT_KEY
from runtime.cloud.controllers.replicas import LABEL
from runtime.cloud.controllers.world import EDGE_LABEL
from runtime.kube.resources import LEASES, NODES, OBJECTSYNCS, PODS
from tests.cloud.test_controllers import pod
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.wait import eventually_async


async def test_two_replicas_one_killed_the_other_takes_over_its_edges(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    a = await env.cloud("rep-a")
    b = await env.cloud("rep-b")

    async def replica_leases() -> set[str]:
        found = await client.list(LEASES, namespace="kubeedge", labels={LABEL: "true"})
        return {i["spec"]["holderIdentity"] for i in found.items}

    await eventually_async(lambda: _eq(replica_leases, {"rep-a", "rep-b"}), what="both replica leases")
    await eventually_async(
        lambda: a.ctl.replicas.live == ["rep-a", "rep-b"] == b.ctl.replicas.live, what="live sets"
    )
    assert a.ctl.replicas.is_leader() and not b.ctl.replicas.is_leader()
    e = await env.edge("tk-1", a)
    await env.register(e)

    async def node() -> dict[str, Any]:
        return await client.get(NODES, "tk-1")

    await eventually_async(
        lambda: _pred(node, lambda n: n["metadata"]["annotations"].get(ANN_OWNER) == "rep-a"),
        what="rep-a owns tk-1",
    )
    await a.stop()  # killed: its Lease stays behind and expires
    await eventually_async(
        lambda: _pred(node, lambda n: n["metadata"]["annotations"].get(ANN_OWNER) == "rep-b"),
        within=30,
        what="rep-b took over tk-1",
    )
    # The node's owner annotation is written inside the takeover; the takeover is recorded after it returns.
    await eventually_async(lambda: "rep-a" in b.ctl.replicas.taken_over, what="rep-a recorded as taken over")
    assert b.ctl.replicas.is_leader()
    await eventually_async(
        lambda: _pred(node, lambda n: TAINT_KEY in {t["key"] for t in n["spec"].get("taints") or []}),
        what="tk-1 marked disconnected by rep-b",
    )
    seen = set()
    for _ in range(8):  # rep-b keeps tk-1's Lease renewed
        lease = await client.get(LEASES, "tk-1", namespace="kube-node-lease")
        seen.add(lease["spec"]["renewTime"])
        await asyncio.sleep(0.3)  # the thing under test: renewals spread over time
    assert len(seen) >= 3
    assert await replica_leases() == {"rep-b"}  # the dead replica's Lease was removed after takeover
    assert "tk-1" in b.ctl.liveness.owned()


async def _eq(get: Any, want: Any) -> bool:
    return bool(await get() == want)


async def _pred(get: Any, pred: Any) -> bool:
    return bool(pred(await get()))


async def test_an_edge_moving_to_another_replica_resyncs_only_changes(cloudenv: CloudEnv) -> None:
    """Both replicas run before the edge joins: what it acknowledges on rep-a reaches rep-b's ack state
    through the ObjectSyncs (SyncStore.follow), so after rep-a dies its resync on rep-b sends only what
    changed — not everything rep-b never saw acknowledged — and rep-b can delete rep-a's entries."""
    env, client = cloudenv, cloudenv.client
    a = await env.cloud("mv-a")
    b = await env.cloud("mv-b")
    e = await env.edge("mv-1", a, epoch="epoch-1")
    await env.register(e)
    for name in ("p1", "p2", "p3"):
        await client.create(PODS, pod(name, "mv-1"))
    a_edge, b_edge = a.ctl.edge, b.ctl.edge
    assert a_edge is not None and b_edge is not None
    await eventually_async(
        lambda: len(a.ctl.world.desired("mv-1")) == 5, what="node, 3 pods and kube-root-ca.crt"
    )

    def acked(ctl: Any) -> dict[str, str]:
        return {uid: entry.rv for uid, entry in ctl.acks.for_node("mv-1").items()}

    await eventually_async(lambda: len(acked(a_edge)) == 5 and a.hub.pending_acks() == 0, what="all acked")
    await eventually_async(lambda: acked(b_edge) == acked(a_edge), what="rep-b follows rep-a's acks")
    await e.stop()
    await a.stop()
    changed = await client.patch(PODS, "p2", {"metadata": {"labels": {"moved": "yes"}}}, namespace="default")
    e2 = await env.edge("mv-1", b, epoch="epoch-1")
    await eventually_async(lambda: any(m.resource == "default/pod/p2" for m in e2.received), what="p2")
    await asyncio.sleep(1.0)  # anything else would have come by now
    pods = [(m.operation, m.resource, m.resourceversion) for m in e2.received if "/pod/" in m.resource]
    assert pods == [("update", "default/pod/p2", changed["metadata"]["resourceVersion"])]
    others = {(m.operation, m.resource) for m in e2.received if "/pod/" not in m.resource}
    assert others <= {("update", "null/node/mv-1")}, others  # the Node changed too (session owner b)

    # an entry rep-a created is deleted by rep-b once the edge acknowledges the pod's deletion
    p3 = next(uid for uid, c in b.ctl.world.desired("mv-1").items() if c.resource == "default/pod/p3")
    await client.delete(PODS, "p3", namespace="default", grace_period=0)

    async def p3_entry_gone() -> bool:
        names = {i["metadata"]["name"] for i in (await client.list(OBJECTSYNCS, namespace="kubeedge")).items}
        return f"mv-1.{p3}" not in names

    await eventually_async(p3_entry_gone, what="p3's ObjectSync deleted by rep-b")


async def test_a_dead_replicas_nodes_are_claimed_several_at_once(cloudenv: CloudEnv) -> None:
    """60 offline nodes of a dead replica: the live one claims them concurrently (each a Node read and
    a conditional write; a node's Lease goes unrenewed until its claim) and then holds every one."""
    env, client = cloudenv, cloudenv.client
    b = await env.cloud("claim-b")
    names = [f"orphan-{i}" for i in range(60)]
    for name in names:
        body = {"metadata": {"name": name, "labels": {EDGE_LABEL: ""}, "annotations": {ANN_OWNER: "gone"}}}
        await client.create(NODES, body)
    await eventually_async(lambda: set(names) <= set(b.ctl.world.nodes), what="b sees the nodes")
    in_flight, most = 0, 0
    claim = b.ctl.liveness.claim

    async def counted(
        node: str, dead: str, renewed: float | None = None
    ) -> bool:  # observes, changes nothing
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            return await claim(node, dead, renewed)
        finally:
            in_flight -= 1

    b.ctl.liveness.claim = counted  # type: ignore[method-assign]
    await b.ctl._take_over("gone")
    assert most > 1, most
    owners = {(await client.get(NODES, n))["metadata"]["annotations"][ANN_OWNER] for n in names}
    assert owners == {"claim-b"} and set(names) <= set(b.ctl.liveness.owned())
