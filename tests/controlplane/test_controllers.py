"""The controllers through runtime.kube, written against Kubernetes behaviour (they also pass against a
real cluster given KEDGE_TEST_KUBECONFIG): service accounts and root CA, namespace lifecycle, scheduler."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import pytest

from runtime.kube.client import KubeClient
from runtime.kube.errors import Forbidden
from runtime.kube.resources import CONFIGMAPS, EVENTS, NAMESPACES, NODES, PODS, SERVICEACCOUNTS
from tests.fixtures.controlplane import ControlPlane, LeaseRenewer, gone
from tests.fixtures.wait import eventually_async

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def new_namespace(client: KubeClient) -> str:
    name = unique("t")
    await client.create(NAMESPACES, {"metadata": {"name": name}})
    return name


# -- service accounts and root CA --------------------------------------------------------------------


async def test_every_namespace_gets_default_sa_and_root_ca(controlplane: ControlPlane) -> None:
    client = controlplane.client
    ca = client.ca_pem
    for each in ("default", "kube-system", await new_namespace(client)):

        async def account(ns: str = each) -> dict[str, Any]:
            return await client.get(SERVICEACCOUNTS, "default", namespace=ns)

        async def root_ca(ns: str = each) -> dict[str, Any]:
            return await client.get(CONFIGMAPS, "kube-root-ca.crt", namespace=ns)

        await eventually_async(account, what=f"{each}/default")
        cm = await eventually_async(root_ca, what=f"{each}/kube-root-ca.crt")
        assert cm["data"]["ca.crt"] == ca

    ns = await new_namespace(client)
    await eventually_async(lambda: client.get(CONFIGMAPS, "kube-root-ca.crt", namespace=ns))
    await client.delete(CONFIGMAPS, "kube-root-ca.crt", namespace=ns)
    await client.delete(SERVICEACCOUNTS, "default", namespace=ns)
    await eventually_async(lambda: client.get(SERVICEACCOUNTS, "default", namespace=ns), what="recreated SA")
    back = await eventually_async(lambda: client.get(CONFIGMAPS, "kube-root-ca.crt", namespace=ns))
    assert back["data"]["ca.crt"] == ca
    await client.patch(CONFIGMAPS, "kube-root-ca.crt", {"data": {"ca.crt": "tampered"}}, namespace=ns)

    async def repaired() -> bool:
        cm = await client.get(CONFIGMAPS, "kube-root-ca.crt", namespace=ns)
        return bool(cm["data"]["ca.crt"] == ca)

    await eventually_async(repaired, what="root CA restored")


# -- namespace lifecycle -----------------------------------------------------------------------------


async def test_namespace_deletion_waits_for_contents_then_completes(controlplane: ControlPlane) -> None:
    client = controlplane.client
    ns = await new_namespace(client)
    await client.create(CONFIGMAPS, {"metadata": {"name": "plain", "namespace": ns}, "data": {"a": "1"}})
    held = {"metadata": {"name": "held", "namespace": ns, "finalizers": ["example.com/hold"]}}
    await client.create(CONFIGMAPS, held)
    await client.delete(NAMESPACES, ns)

    got = await client.get(NAMESPACES, ns)
    assert got["status"]["phase"] == "Terminating" and got["metadata"]["deletionTimestamp"]
    with pytest.raises(Forbidden) as refused:
        await client.create(CONFIGMAPS, {"metadata": {"name": "late", "namespace": ns}})
    assert "being terminated" in str(refused.value)

    async def only_held_left() -> bool:
        items = (await client.list(CONFIGMAPS, namespace=ns)).items
        names = [o["metadata"]["name"] for o in items]
        return names == ["held"] and bool(items[0]["metadata"].get("deletionTimestamp"))

    await eventually_async(only_held_left, what="contents deleted except the finalized one")
    await asyncio.sleep(1.0)  # the thing under test: the namespace stays held by the finalized object
    assert (await client.get(NAMESPACES, ns))["spec"]["finalizers"] == ["kubernetes"]  # still waiting

    await client.patch(CONFIGMAPS, "held", {"metadata": {"finalizers": None}}, namespace=ns)

    await eventually_async(lambda: gone(client, NAMESPACES, ns), within=15.0, what="namespace removed")


# -- scheduler ---------------------------------------------------------------------------------------


async def make_node(
    client: KubeClient,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    cpu: str = "2",
) -> None:
    await client.create(
        NODES,
        {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
         "spec": {"taints": taints or []}},
    )  # fmt: skip
    status = {
        "status": {
            "capacity": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "110"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready",
                 "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        }
    }  # fmt: skip
    await client.patch(NODES, name, status, subresource="status", type="strategic")


def pod(name: str, ns: str, *, cpu: str | None = None, **spec: Any) -> dict[str, Any]:
    res = {"requests": {"cpu": cpu}} if cpu else {}
    container = {"name": "c", "image": "registry.k8s.io/pause:3.9", "resources": res}
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"containers": [container], **spec}}


async def bound_node(client: KubeClient, ns: str, name: str) -> str | None:
    return (await client.get(PODS, name, namespace=ns))["spec"].get("nodeName")


@pytest.fixture
def zone() -> str:
    return unique("zone")  # labels unique per test, so a shared real cluster's nodes do not interfere


async def test_scheduler_binds_by_selector_taints_and_resources(
    controlplane: ControlPlane, zone: str
) -> None:
    client = controlplane.client
    ns = await new_namespace(client)
    a, b, c = (unique(n) for n in ("a", "b", "c"))
    leases = await LeaseRenewer(client, [a, b, c]).__aenter__()
    await make_node(client, a, labels={"zone": zone}, cpu="1")
    await make_node(
        client, b, labels={"zone": zone}, taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
    )
    await make_node(client, c, labels={"zone": f"{zone}-other"})
    try:
        await client.create(PODS, pod("p1", ns, nodeSelector={"zone": zone}))
        assert (
            await eventually_async(lambda: bound_node(client, ns, "p1"), what="p1 bound") == a
        )  # b is tainted

        tolerating = pod("p2", ns, cpu="1500m", nodeSelector={"zone": zone},
                         tolerations=[{"key": "dedicated", "operator": "Equal", "value": "x"}])  # fmt: skip
        await client.create(PODS, tolerating)
        assert (
            await eventually_async(lambda: bound_node(client, ns, "p2"), what="p2 bound") == b
        )  # a lacks cpu

        got = await client.get(PODS, "p2", namespace=ns)
        scheduled = [x for x in got["status"].get("conditions", []) if x["type"] == "PodScheduled"]
        assert scheduled and scheduled[0]["status"] == "True"

        async def scheduled_event() -> bool:
            events = (await client.list(EVENTS, namespace=ns)).items
            return any(e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "p2" for e in events)

        await eventually_async(scheduled_event, what="Scheduled event")
    finally:
        await leases.stop()
        for n in (a, b, c):
            await client.delete(NODES, n)


async def test_unschedulable_pod_gets_condition_and_event_then_binds(
    controlplane: ControlPlane, zone: str
) -> None:
    client = controlplane.client
    ns = await new_namespace(client)
    await client.create(PODS, pod("waiting", ns, nodeSelector={"zone": zone}))

    async def unschedulable() -> dict[str, Any] | None:
        got = await client.get(PODS, "waiting", namespace=ns)
        for cond in got["status"].get("conditions", []):
            if cond["type"] == "PodScheduled" and cond["status"] == "False":
                return dict(cond)
        return None

    cond = await eventually_async(unschedulable, what="Unschedulable condition")
    assert cond["reason"] == "Unschedulable"
    assert (
        "nodes are available" in cond["message"] or cond["message"] == "no nodes available to schedule pods"
    )
    assert (await client.get(PODS, "waiting", namespace=ns))["status"]["phase"] == "Pending"

    async def failed_event() -> bool:
        events = (await client.list(EVENTS, namespace=ns)).items
        return any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events)

    await eventually_async(failed_event, what="FailedScheduling event")

    name = unique("late")
    async with LeaseRenewer(client, [name]):
        await make_node(client, name, labels={"zone": zone})
        try:
            assert (
                await eventually_async(lambda: bound_node(client, ns, "waiting"), what="bound after node")
                == name
            )
        finally:
            await client.delete(NODES, name)
