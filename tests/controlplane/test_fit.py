"""Scheduler filters and messages (pure): the verdicts kube-scheduler would give."""

from __future__ import annotations

from typing import Any

from runtime.apiserver.controllers import fit


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         ready: bool = True, cpu: str = "2", memory: str = "4Gi", pods: str = "110",
         unschedulable: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown"}],
        },
    }


def pod(cpu: str | None = None, memory: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    container = {"name": "c", "image": "x", "resources": {"requests": requests} if requests else {}}
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [container], **spec}}


def test_node_selector_and_required_affinity() -> None:
    n = node("edge-1", labels={"zone": "a", "gpu": "4"})
    assert fit.filter_node(pod(nodeSelector={"zone": "a"}), n, fit.NodeUsage()) is None
    assert fit.filter_node(pod(nodeSelector={"zone": "b"}), n, fit.NodeUsage()) == (
        "node(s) didn't match Pod's node affinity/selector"
    )
    term = {"matchExpressions": [{"key": "gpu", "operator": "Gt", "values": ["2"]},
                                 {"key": "zone", "operator": "In", "values": ["a", "c"]}]}  # fmt: skip
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    assert fit.matches_affinity(pod(affinity=aff), n)
    term["matchExpressions"][0]["values"] = ["8"]
    assert not fit.matches_affinity(pod(affinity=aff), n)
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["edge-1"]}]}
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term, by_name]}
        }
    }
    assert fit.matches_affinity(pod(affinity=aff), n)  # terms are ORed
    not_exists: dict[str, Any] = {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [not_exists]}
        }
    }
    assert not fit.matches_affinity(pod(affinity=aff), n)


def test_taints_and_tolerations() -> None:
    taint = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
    n = node("n", taints=[taint, {"key": "soft", "effect": "PreferNoSchedule"}])
    assert (
        fit.filter_node(pod(), n, fit.NodeUsage())
        == "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
    )
    for tol in (
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists"},
    ):
        assert fit.filter_node(pod(tolerations=[tol]), n, fit.NodeUsage()) is None, tol
    wrong = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert fit.filter_node(pod(tolerations=[wrong]), n, fit.NodeUsage()) is not None
    valued = node("v", taints=[{"key": "dedicated", "value": "edge", "effect": "NoExecute"}])
    assert (
        fit.filter_node(pod(tolerations=[{"key": "dedicated", "value": "edge"}]), valued, fit.NodeUsage())
        is None
    )
    assert fit.filter_node(pod(tolerations=[{"key": "dedicated", "value": "x"}]), valued, fit.NodeUsage())


def test_resources_pods_ready_and_unschedulable() -> None:
    n = node("n", cpu="1", memory="1Gi", pods="2")
    used = fit.NodeUsage()
    used.add(pod(cpu="600m", memory="512Mi"))
    assert fit.filter_node(pod(cpu="400m"), n, used) is None
    assert fit.filter_node(pod(cpu="500m"), n, used) == "Insufficient cpu"
    assert fit.filter_node(pod(memory="600Mi"), n, used) == "Insufficient memory"
    used.add(pod())
    assert fit.filter_node(pod(), n, used) == "Too many pods"
    assert fit.filter_node(pod(), node("d", ready=False), fit.NodeUsage()) == "node(s) were not ready"
    cordoned = node("c", unschedulable=True)
    assert fit.filter_node(pod(), cordoned, fit.NodeUsage()) == "node(s) were unschedulable"


def test_init_containers_and_score_spreads() -> None:
    p = pod(cpu="100m")
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1500m"}}}]
    assert fit.pod_requests(p)["cpu"] == fit.parse_quantity("1500m")
    busy, idle = fit.NodeUsage(), fit.NodeUsage()
    busy.add(pod())
    assert fit.score(pod(), node("a"), idle) > fit.score(pod(), node("b"), busy)


def test_message() -> None:
    assert fit.unschedulable_message(0, []) == "no nodes available to schedule pods"
    selector = "node(s) didn't match Pod's node affinity/selector"
    msg = fit.unschedulable_message(3, ["Insufficient cpu", selector, "Insufficient cpu"])
    assert msg == f"0/3 nodes are available: 1 {selector}, 2 Insufficient cpu."
