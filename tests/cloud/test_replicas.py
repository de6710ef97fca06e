"""Several cloud replicas on one cluster: each holds its own Lease; when one dies, another takes over its
edges' leases (and marks them disconnected) once the dead replica's Lease expires."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.cloud.controllers.liveness import ANN_OWNER, TAINT_KEY
from runtime.cloud.controllers.replicas import LABEL
from runtime.kube.resources import LEASES, NODES
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
    assert "rep-a" in b.ctl.replicas.taken_over and b.ctl.replicas.is_leader()
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
