"""kedge's REAL edge runtime (runtime.edge.run.EdgeRuntime, pods off: no Docker needed) against kedge's
cloud controllers: registration, Ready, Lease from the session, pods and references into the edge cache,
updates and deletes, and the disconnect taint once the edge stops."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from runtime.cloud.controllers.liveness import CONDITION, TAINT_KEY
from runtime.edge.run import EdgeRuntime
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CONFIGMAPS, LEASES, NODES, PODS
from tests.cloud.test_controllers import pod
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.edge import make_edge_root
from tests.fixtures.wait import eventually_async


async def test_real_edge_runtime_with_the_cloud_controllers(cloudenv: CloudEnv, tmp_path: Path) -> None:
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    root = tmp_path / "edge"
    cfg = make_edge_root(root, env.tls, "rt-1", cloud.address)
    rt = EdgeRuntime(cfg, root, pods=False)
    stop = asyncio.Event()
    task = asyncio.create_task(rt.run(stop))

    async def node() -> dict[str, Any] | None:
        try:
            return await client.get(NODES, "rt-1")
        except Exception:
            return None

    async def ready() -> bool:
        n = await node()
        conds = {c["type"]: c["status"] for c in (n or {}).get("status", {}).get("conditions") or []}
        return conds.get("Ready") == "True" and conds.get(CONDITION) == "True"

    try:
        await eventually_async(ready, within=30, what="rt-1 registered, Ready and EdgeConnected")
        n = await node()
        assert n is not None and n["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""
        cm = {"metadata": {"name": "rc", "namespace": "default"}, "data": {"k": "1"}}
        await client.create(CONFIGMAPS, cm)
        created = await client.create(PODS, pod("rp", "rt-1", cm="rc"))
        store = rt.store
        assert store is not None

        async def cached(typ: str, name: str, check: Any = None) -> bool:
            obj = await store.get(typ, "default", name)
            return obj is not None and (check is None or check(obj))

        await eventually_async(lambda: cached("pod", "rp"), what="pod in the edge cache")
        await eventually_async(lambda: cached("configmap", "rc"), what="configmap pushed with the pod")
        uid = created["metadata"]["uid"]
        await eventually_async(
            lambda: cloud.ctl.edge and cloud.ctl.edge.acks.get("rt-1", uid), what="acked by the edge"
        )
        # the first renewal creates the Lease (paced with the others, so it may follow the ack)
        await eventually_async(lambda: _renewed(client, ""), what="lease created by the cloud")
        lease = await client.get(LEASES, "rt-1", namespace="kube-node-lease")
        await eventually_async(
            lambda: _renewed(client, lease["spec"]["renewTime"]), what="lease renewed by the cloud"
        )
        await client.patch(CONFIGMAPS, "rc", {"data": {"k": "2"}}, namespace="default")
        await eventually_async(
            lambda: cached("configmap", "rc", lambda o: o["data"] == {"k": "2"}), what="update"
        )
        await client.delete(PODS, "rp", namespace="default", grace_period=0)
        await eventually_async(lambda: _absent(store, "rp"), what="pod delete reached the edge cache")
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

    async def tainted() -> bool:
        n = await node()
        return TAINT_KEY in {t["key"] for t in (n or {}).get("spec", {}).get("taints") or []}

    await eventually_async(tainted, within=30, what="disconnected taint after the edge stopped")


async def _renewed(client: Any, before: str) -> bool:
    try:
        lease = await client.get(LEASES, "rt-1", namespace="kube-node-lease")
    except KubeNotFound:
        return False
    return bool(lease["spec"]["renewTime"] > before)


async def _absent(store: Any, name: str) -> bool:
    return await store.get("pod", "default", name) is None
