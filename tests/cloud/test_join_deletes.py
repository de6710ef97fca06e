"""Pods deleted at every point of an edge's join never stay Terminating (issue 25, item 5).

The real cloud controllers over the embedded API server, kedge's REAL edge runtime with its pod
manager on the real Docker engine. A freshly joined edge starts its pod manager only with the first
pod, so the first deletions reach the edge before the manager runs: those must still be stopped
*and* finished with the final delete (the kubelet's part), or the pod stays Terminating for good.

Points: (1) the Node is registered but the edge is not Ready yet; (2) Ready, the pod manager not
started (no pod seen yet); (3) the pod in the edge cache, no status reported yet; (4) Running.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import docker

from runtime.edge.run import EdgeRuntime
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import NODES, PODS
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.edge import make_edge_root
from tests.fixtures.wait import eventually_async

NS = "default"


def pod(name: str, node: str, image: str) -> dict[str, Any]:
    container = {"name": "c", "image": image, "command": ["sleep", "3600"], "imagePullPolicy": "IfNotPresent"}
    spec = {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [container]}
    return {"metadata": {"name": name, "namespace": NS}, "spec": spec}


async def test_pods_deleted_at_every_point_of_the_join_are_gone(
    cloudenv: CloudEnv, tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient
) -> None:
    env, client = cloudenv, cloudenv.client
    cloud = await env.cloud()
    node = f"join-{uuid.uuid4().hex[:6]}"
    cfg = make_edge_root(tmp_path / "edge", env.tls, node, cloud.address)
    rt = EdgeRuntime(cfg, tmp_path / "edge", pods=True)
    stop = asyncio.Event()
    deleted: list[str] = []

    async def create_and_delete(name: str, before_delete: Any = None) -> None:
        await client.create(PODS, pod(name, node, busybox_image))
        if before_delete is not None:
            await eventually_async(before_delete, within=60, what=f"{name}: the point of the join")
        await client.delete(PODS, name, namespace=NS, grace_period=1)  # Terminating: the edge finishes it
        deleted.append(name)

    async def registered() -> bool:
        try:
            await client.get(NODES, node)
        except KubeNotFound:
            return False
        return True

    async def cached(name: str) -> bool:
        return rt.store is not None and await rt.store.get("pod", NS, name) is not None

    async def phase(name: str) -> str:
        p = await client.get(PODS, name, namespace=NS)
        return str((p.get("status") or {}).get("phase") or "")

    async def no_status_yet(name: str) -> bool:
        return await cached(name) and not (await client.get(PODS, name, namespace=NS)).get("status", {}).get(
            "containerStatuses"
        )

    task = asyncio.create_task(rt.run(stop))
    try:
        await eventually_async(registered, within=30, what=f"{node} registered")
        await create_and_delete("at-register")  # (1) not Ready yet, nothing cached
        await eventually_async(
            lambda: rt.node is not None and rt.node.ready_in_cloud, within=30, what="edge Ready"
        )
        await create_and_delete("at-ready")  # (2) the pod manager starts with these first pods
        await create_and_delete("before-status", lambda: no_status_yet("before-status"))  # (3)
        await create_and_delete("running", lambda: _is(phase("running"), "Running"))  # (4)

        async def all_gone() -> bool:
            left = [p["metadata"]["name"] for p in (await client.list(PODS, namespace=NS)).items]
            return not set(deleted) & set(left)

        await eventually_async(
            all_gone, within=90, what=f"pods {deleted} gone from the API (none stuck Terminating)"
        )
        left = docker_client.containers.list(all=True, filters={"label": f"io.kedge.node={node}"})
        assert not left, [c.name for c in left]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        for c in docker_client.containers.list(all=True, filters={"label": f"io.kedge.node={node}"}):
            c.remove(force=True)


async def _is(value: Any, want: str) -> bool:
    return bool(await value == want)
