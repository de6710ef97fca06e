"""Node lifecycle: a node whose Lease stops turns Unknown, gets the unreachable taints, and its pods
are evicted per their tolerationSeconds while a pod tolerating forever stays; a returning node is
cleared. Timings follow the control plane's node-monitor grace (seconds here, 40 s on a real cluster)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.kube.resources import LEASES, NODES, PODS
from tests.controlplane.test_controllers import new_namespace, unique
from tests.fixtures.controlplane import ControlPlane, FakeKubelet, LeaseRenewer, gone
from tests.fixtures.wait import eventually_async

UNREACHABLE = "node.kubernetes.io/unreachable"


def bound_pod(name: str, ns: str, node: str, tolerations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "tolerations": tolerations,
                 "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }  # fmt: skip


def ready(node: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


async def test_silent_node_turns_unknown_tainted_and_evicts(controlplane: ControlPlane) -> None:
    client = controlplane.client
    grace, period = controlplane.node_grace, controlplane.node_period
    ns = await new_namespace(client)
    node = unique("edge")
    kubelet = FakeKubelet(client, [node])
    await kubelet.register()  # Ready once; from now on only the Lease says it is alive
    renewer = LeaseRenewer(client, [node], every=min(1.0, grace / 4))
    await renewer.__aenter__()
    try:
        short = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]
        forever = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
        await client.create(PODS, bound_pod("short", ns, node, short))
        await client.create(PODS, bound_pod("forever", ns, node, forever))
        await client.create(PODS, bound_pod("defaults", ns, node, []))  # admission adds 300 s tolerations

        await asyncio.sleep(grace * 1.5 + period)  # a renewed lease keeps the node Ready
        got = await client.get(NODES, node)
        assert ready(got)["status"] == "True" and not got.get("spec", {}).get("taints")

        await renewer.stop()

        async def unknown() -> dict[str, Any] | None:
            n = await client.get(NODES, node)
            return n if ready(n)["status"] == "Unknown" else None

        got = await eventually_async(unknown, within=grace * 2 + period * 2 + 5, what="Ready=Unknown")
        assert ready(got)["reason"] == "NodeStatusUnknown"

        async def tainted() -> list[dict[str, Any]] | None:
            taints = (await client.get(NODES, node)).get("spec", {}).get("taints") or []
            keys = sorted((t["key"], t["effect"]) for t in taints if t["key"] == UNREACHABLE)
            return taints if keys == [(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")] else None

        taints = await eventually_async(tainted, within=10, what="unreachable taints")
        assert next(t for t in taints if t["effect"] == "NoExecute").get("timeAdded")

        async def evicted() -> bool:
            p = await client.get(PODS, "short", namespace=ns)
            return bool(p["metadata"].get("deletionTimestamp"))

        await eventually_async(evicted, within=10, what="pod with tolerationSeconds=1 evicted")
        await asyncio.sleep(1.5)  # the thing under test: the tolerating pods stay
        for name in ("forever", "defaults"):  # forever: never; defaults: only after 300 s
            p = await client.get(PODS, name, namespace=ns)
            assert not p["metadata"].get("deletionTimestamp"), name

        await kubelet.register_status()  # the kubelet is back: Ready=True clears the taints

        async def cleared() -> bool:
            n = await client.get(NODES, node)
            return ready(n)["status"] == "True" and not [
                t for t in n.get("spec", {}).get("taints") or [] if t["key"] == UNREACHABLE
            ]

        await eventually_async(cleared, within=10, what="taints cleared")
    finally:
        await renewer.stop()
        await client.delete(NODES, node)


async def test_node_deletion_takes_its_lease_and_pods(controlplane: ControlPlane) -> None:
    """The Lease (ownerReference → Node) goes with the Node (garbage collector); pods bound to the
    vanished node are force-deleted (pod GC)."""
    client = controlplane.client
    ns = await new_namespace(client)
    node = unique("gone")
    kubelet = FakeKubelet(client, [node])
    await kubelet.register()
    owner = await client.get(NODES, node)
    lease = {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Node", "name": node, "uid": owner["metadata"]["uid"]}]},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40},
    }  # fmt: skip
    await client.create(LEASES, lease)
    await client.create(PODS, bound_pod("stranded", ns, node, []))
    await client.delete(NODES, node)

    await eventually_async(
        lambda: gone(client, LEASES, node, namespace="kube-node-lease"),
        within=15,
        what="lease collected with its node",
    )
    await eventually_async(
        lambda: gone(client, PODS, "stranded", namespace=ns),
        within=max(15.0, controlplane.node_grace * 3),
        what="orphaned pod collected",
    )


async def test_terminated_pods_beyond_threshold_are_collected(controlplane: ControlPlane) -> None:
    if controlplane.terminated_threshold > 50:
        pytest.skip("a real cluster's threshold (12,500 terminated pods) is too large to reach in a test")
    client = controlplane.client
    ns = await new_namespace(client)
    node = unique("worker")
    await FakeKubelet(client, [node]).register()  # no pod handling: the test sets the phases
    async with LeaseRenewer(client, [node]):
        total = controlplane.terminated_threshold + 3
        for i in range(total):
            await client.create(PODS, bound_pod(f"done-{i}", ns, node, []))
            done = {"status": {"phase": "Succeeded"}}
            await client.patch(PODS, f"done-{i}", done, namespace=ns, subresource="status")

        async def trimmed() -> list[str] | None:
            names = sorted(p["metadata"]["name"] for p in (await client.list(PODS, namespace=ns)).items)
            return names if len(names) <= controlplane.terminated_threshold else None

        left = await eventually_async(trimmed, within=15, what="terminated pods trimmed")
        assert left == sorted(f"done-{i}" for i in range(3, total))  # the oldest went first
    await client.delete(NODES, node)
