"""Garbage collection and Deployments → ReplicaSets → Pods, through kubectl and runtime.kube; written
against Kubernetes behaviour so they also pass on a real cluster (KEDGE_TEST_KUBECONFIG)."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any

import pytest

from runtime.apiserver.controllers.replicasets import is_pod_ready
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CONFIGMAPS, DEPLOYMENTS, PODS, REPLICASETS
from tests.controlplane.test_controllers import new_namespace, unique
from tests.fixtures.controlplane import ControlPlane, FakeKubelet, gone
from tests.fixtures.wait import eventually_async


async def kubectl(cp: ControlPlane, *args: str, check: bool = True, stdin: str | None = None) -> str:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.fail("kubectl is not installed (scripts/test.sh installs it)")
    env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        exe,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {err.decode()}")
    return out.decode()


def owned_cm(name: str, ns: str, owner: dict[str, Any], block: bool = False) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
           "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block}  # fmt: skip
    return {"metadata": {"name": name, "namespace": ns, "ownerReferences": [ref]}}


async def absent(client: KubeClient, ns: str, name: str) -> bool:
    try:
        await client.get(CONFIGMAPS, name, namespace=ns)
    except KubeNotFound:
        return True
    return False


async def test_gc_background_foreground_orphan(controlplane: ControlPlane) -> None:
    client = controlplane.client
    ns = await new_namespace(client)

    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "bg-owner", "namespace": ns}})
    await client.create(CONFIGMAPS, owned_cm("bg-dep", ns, owner))
    await client.delete(CONFIGMAPS, "bg-owner", namespace=ns, propagation="Background")
    await eventually_async(lambda: absent(client, ns, "bg-dep"), what="background dependent collected")

    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "fg-owner", "namespace": ns}})
    dep = owned_cm("fg-dep", ns, owner, block=True)
    dep["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(CONFIGMAPS, dep)
    await client.delete(CONFIGMAPS, "fg-owner", namespace=ns, propagation="Foreground")
    held = await eventually_async(
        lambda: _deleting(client, ns, "fg-dep"), what="foreground dependent marked for deletion"
    )
    assert held
    await asyncio.sleep(0.5)  # the thing under test: the owner stays while its dependent blocks
    blocked = await client.get(CONFIGMAPS, "fg-owner", namespace=ns)  # owner waits for its blocking dependent
    assert "foregroundDeletion" in blocked["metadata"]["finalizers"]
    await client.patch(CONFIGMAPS, "fg-dep", {"metadata": {"finalizers": None}}, namespace=ns)
    await eventually_async(lambda: absent(client, ns, "fg-owner"), what="foreground owner removed")

    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "or-owner", "namespace": ns}})
    await client.create(CONFIGMAPS, owned_cm("or-dep", ns, owner))
    await client.delete(CONFIGMAPS, "or-owner", namespace=ns, propagation="Orphan")
    await eventually_async(lambda: absent(client, ns, "or-owner"), what="orphaning owner removed")
    orphan = await client.get(CONFIGMAPS, "or-dep", namespace=ns)
    assert not orphan["metadata"].get("ownerReferences")

    alive = await client.create(CONFIGMAPS, {"metadata": {"name": "alive", "namespace": ns}})
    both = owned_cm("two-owners", ns, alive)
    gone_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "ghost",
        "uid": "00000000-0000-0000-0000-000000000001",
    }
    both["metadata"]["ownerReferences"].append(gone_ref)
    await client.create(CONFIGMAPS, both)

    async def dangling_removed() -> bool:
        obj = await client.get(CONFIGMAPS, "two-owners", namespace=ns)
        return [r["name"] for r in obj["metadata"]["ownerReferences"]] == ["alive"]

    await eventually_async(dangling_removed, what="dangling reference removed, object kept")


async def _deleting(client: KubeClient, ns: str, name: str) -> bool:
    return bool((await client.get(CONFIGMAPS, name, namespace=ns))["metadata"].get("deletionTimestamp"))


async def pods_of(client: KubeClient, ns: str, app: str) -> list[dict[str, Any]]:
    return (await client.list(PODS, namespace=ns, labels={"app": app})).items


async def test_deployment_schedules_scales_rolls_and_deletes(controlplane: ControlPlane) -> None:
    client = controlplane.client
    ns = await new_namespace(client)
    nodes = [unique("node") for _ in range(3)]
    async with FakeKubelet(client, nodes):
        # `kubectl create deployment` posts protobuf, which the embedded server does not decode yet:
        # generate the manifest client-side and create it as JSON (same object, same server path).
        manifest = await kubectl(
            controlplane,
            "create",
            "deployment",
            "web",
            "--image=nginx:1.25",
            "--replicas=3",
            "-n",
            ns,
            "--dry-run=client",
            "-o",
            "json",
        )
        await kubectl(controlplane, "create", "-f", "-", stdin=manifest)
        await kubectl(controlplane, "rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
        pods = await pods_of(client, ns, "web")
        assert len(pods) == 3 and all(p["spec"].get("nodeName") in nodes for p in pods)
        assert len({p["spec"]["nodeName"] for p in pods}) == 3  # spread over the three nodes
        d = await client.get(DEPLOYMENTS, "web", namespace=ns)
        assert d["status"]["availableReplicas"] == 3 and d["status"]["updatedReplicas"] == 3

        await kubectl(controlplane, "scale", "deployment/web", "--replicas=5", "-n", ns)
        await kubectl(controlplane, "rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")

        async def five_running() -> bool:
            ps = [p for p in await pods_of(client, ns, "web") if not p["metadata"].get("deletionTimestamp")]
            return len(ps) == 5

        await eventually_async(five_running, within=20, what="5 pods")

        await kubectl(controlplane, "set", "image", "deployment/web", "nginx=nginx:1.26", "-n", ns)
        await kubectl(controlplane, "rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")

        async def rolled() -> bool:
            ps = await pods_of(client, ns, "web")
            images = [p["spec"]["containers"][0]["image"] for p in ps]
            return images == ["nginx:1.26"] * 5

        await eventually_async(rolled, within=20, what="all pods on the new image")
        sets = (await client.list(REPLICASETS, namespace=ns)).items
        assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 5]
        revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in sets)
        assert revisions == ["1", "2"]

        await kubectl(controlplane, "delete", "deployment", "web", "-n", ns)

        async def all_gone() -> bool:
            left = (await client.list(REPLICASETS, namespace=ns)).items + await pods_of(client, ns, "web")
            return not left

        await eventually_async(all_gone, within=20, what="ReplicaSets and pods collected")


async def test_rolling_update_respects_max_surge_and_unavailable(controlplane: ControlPlane) -> None:
    """maxSurge=1, maxUnavailable=0 on 3 replicas: never more than 4 pods alive, never fewer than 3 ready."""
    client = controlplane.client
    ns = await new_namespace(client)
    nodes = [unique("roll") for _ in range(2)]
    deployment = {
        "metadata": {"name": "api", "namespace": ns},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "api"}},
                         "spec": {"containers": [{"name": "c", "image": "app:1"}]}},
        },
    }  # fmt: skip
    async with FakeKubelet(client, nodes):
        await client.create(DEPLOYMENTS, deployment)
        await kubectl(controlplane, "rollout", "status", "deployment/api", "-n", ns, "--timeout=60s")
        alive_max, ready_min = 0, 99
        stop = asyncio.Event()

        async def observe() -> None:
            nonlocal alive_max, ready_min
            while not stop.is_set():
                pods = [
                    p for p in await pods_of(client, ns, "api") if not p["metadata"].get("deletionTimestamp")
                ]
                ready = [p for p in pods if is_pod_ready(p)]
                alive_max, ready_min = max(alive_max, len(pods)), min(ready_min, len(ready))
                await asyncio.sleep(0.01)  # the thing under test: pod counts sampled through the rollout

        watcher = asyncio.create_task(observe())
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "app:2"}]}}}}
        await client.patch(DEPLOYMENTS, "api", patch, namespace=ns, type="strategic")
        await kubectl(controlplane, "rollout", "status", "deployment/api", "-n", ns, "--timeout=60s")
        stop.set()
        await watcher
        assert alive_max <= 4, alive_max
        assert ready_min >= 3, ready_min
        images = {p["spec"]["containers"][0]["image"] for p in await pods_of(client, ns, "api")}
        assert images == {"app:2"}


OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.gc.kedge.test"},
    "spec": {
        "group": "gc.kedge.test",
        "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": OPEN}}],
    },
}


async def test_gc_collects_custom_resources_and_survives_crd_deletion(controlplane: ControlPlane) -> None:
    from runtime.kube.apply import apply_objects
    from runtime.kube.resources import CRDS, Res

    client = controlplane.client
    ns = await new_namespace(client)
    widgets = Res("gc.kedge.test", "v1", "Widget", "widgets", True)
    await apply_objects(client, [CRD])
    try:
        owner = await client.create(CONFIGMAPS, {"metadata": {"name": "widget-owner", "namespace": ns}})
        ref = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "widget-owner",
            "uid": owner["metadata"]["uid"],
        }
        await client.create(widgets, {"metadata": {"name": "w1", "namespace": ns, "ownerReferences": [ref]}})
        await asyncio.sleep(1.5)  # the collector rediscovers kinds periodically (10 s on a real cluster)
        await client.delete(CONFIGMAPS, "widget-owner", namespace=ns)

        await eventually_async(
            lambda: gone(client, widgets, "w1", namespace=ns),
            within=30,
            what="custom resource collected with its owner",
        )
    finally:
        await client.delete(CRDS, CRD["metadata"]["name"])
    await asyncio.sleep(1.5)  # the Widget watch now fails: the control plane must carry on
    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "after-crd", "namespace": ns}})
    await client.create(CONFIGMAPS, owned_cm("after-dep", ns, owner))
    await client.delete(CONFIGMAPS, "after-crd", namespace=ns)
    await eventually_async(
        lambda: absent(client, ns, "after-dep"), what="GC still collecting after CRD deletion"
    )
