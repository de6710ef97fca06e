"""Property test (issue 25): random schema-valid spec and status shapes of Deployments, ReplicaSets,
Pods, Nodes and Namespaces, written through the API while the embedded controllers run, never stop
the server nor any controller — after each example the server answers, /readyz names no failing
controller, and the controller for what was written still reconciles it.

Bounded: a few dozen examples, one control plane for all of them.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from runtime.errors import KedgeError
from runtime.kube.resources import DEPLOYMENTS, NAMESPACES, NODES, PODS, REPLICASETS, SERVICEACCOUNTS, Res
from tests.controlplane.test_resilience import readyz
from tests.fixtures.controlplane import ControlPlane
from tests.fixtures.wait import eventually_async

NS = "shapes"
STAMP = "2026-01-01T00:00:00Z"
KINDS = ("Deployment", "ReplicaSet", "Pod", "Node", "Namespace")
TYPES = {
    "Deployment": ["Available", "Progressing", "ReplicaFailure", "example.com/Audited"],
    "ReplicaSet": ["ReplicaFailure", "example.com/Audited"],
    "Pod": [
        "PodScheduled",
        "Ready",
        "ContainersReady",
        "Initialized",
        "DisruptionTarget",
        "example.com/Gate",
    ],
    "Node": ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable", "example.com/X"],
    "Namespace": ["NamespaceDeletionContentFailure", "example.com/Audited"],
}

small = st.integers(min_value=0, max_value=4)
word = st.from_regex(r"[A-Z][A-Za-z]{0,12}", fullmatch=True)
percent_or_int = st.one_of(small, st.sampled_from(["0%", "25%", "50%", "100%"]))


def conditions(kind: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Conditions with only `type` and `status` required, as the API schema says."""
    cond = st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES[kind]), "status": st.sampled_from(["True", "False", "Unknown"])},
        optional={
            "reason": word,
            "message": st.text(max_size=20),
            "lastTransitionTime": st.just(STAMP),
            "lastUpdateTime": st.just(STAMP),
            "lastHeartbeatTime": st.just(STAMP),
            "lastProbeTime": st.just(STAMP),
        },
    )
    return st.lists(cond, max_size=4, unique_by=lambda c: c["type"])


def counters(*fields: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={f: small for f in fields})


def template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
    }


@st.composite
def workload(draw: st.DrawFn, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    app = f"a{uuid.uuid4().hex[:8]}"
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": app}}, "template": template(app)}
    spec |= draw(st.fixed_dictionaries({}, optional={"replicas": small, "minReadySeconds": small}))
    status = draw(counters("replicas", "readyReplicas", "availableReplicas", "observedGeneration"))
    if kind == "Deployment":
        spec |= draw(
            st.fixed_dictionaries({}, optional={"paused": st.booleans(), "revisionHistoryLimit": small})
        )
        rolling = st.fixed_dictionaries(
            {}, optional={"maxSurge": percent_or_int, "maxUnavailable": percent_or_int}
        )
        strategy = st.one_of(
            st.just({"type": "Recreate"}),
            st.builds(lambda ru: {"type": "RollingUpdate", "rollingUpdate": ru}, rolling),
            st.just({}),
        )
        spec["strategy"] = draw(strategy)
        status |= draw(counters("updatedReplicas", "unavailableReplicas", "collisionCount"))
    else:
        status |= draw(counters("fullyLabeledReplicas"))
    status["conditions"] = draw(conditions(kind))
    return {"metadata": {"name": app}, "spec": spec}, status


@st.composite
def pod(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"p{uuid.uuid4().hex[:8]}"
    container: dict[str, Any] = {"name": "c", "image": "registry.k8s.io/pause:3.9"}
    container |= draw(
        st.fixed_dictionaries(
            {},
            optional={
                "resources": st.fixed_dictionaries(
                    {},
                    optional={
                        "requests": st.fixed_dictionaries({}, optional={"cpu": st.sampled_from(["1m", "2"])})
                    },
                )
            },
        )
    )
    toleration = st.fixed_dictionaries(
        {},
        optional={
            "key": st.sampled_from(["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready", "x"]),
            "operator": st.sampled_from(["Exists", "Equal"]),
            "effect": st.sampled_from(["NoExecute", "NoSchedule"]),
            "tolerationSeconds": small,
        },
    )
    spec: dict[str, Any] = {"containers": [container]}
    spec |= draw(st.fixed_dictionaries({}, optional={"tolerations": st.lists(toleration, max_size=2)}))
    status: dict[str, Any] = draw(
        st.fixed_dictionaries(
            {"conditions": conditions("Pod")},
            optional={"phase": st.sampled_from(["Pending", "Running", "Succeeded", "Failed", "Unknown"])},
        )
    )
    return {"metadata": {"name": name}, "spec": spec}, status


@st.composite
def node(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"n{uuid.uuid4().hex[:8]}"
    taint = st.fixed_dictionaries(
        {
            "key": st.sampled_from(["node.kubernetes.io/unreachable", "example.com/t"]),
            "effect": st.sampled_from(["NoExecute", "NoSchedule"]),
        },
        optional={"value": word, "timeAdded": st.just(STAMP)},
    )
    spec = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "unschedulable": st.booleans(),
                "taints": st.lists(taint, max_size=2, unique_by=lambda t: (t["key"], t["effect"])),
            },
        )
    )
    resources = st.fixed_dictionaries(
        {}, optional={"cpu": st.sampled_from(["1", "500m"]), "pods": st.sampled_from(["0", "10"])}
    )
    status = draw(
        st.fixed_dictionaries(
            {"conditions": conditions("Node")}, optional={"capacity": resources, "allocatable": resources}
        )
    )
    return {"metadata": {"name": name, "labels": {"kedge.test/shapes": "1"}}, "spec": spec}, status


@st.composite
def namespace(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    status = {"conditions": draw(conditions("Namespace"))}
    return {"metadata": {"name": f"s{uuid.uuid4().hex[:8]}"}}, status


SHAPES = st.one_of(
    st.tuples(st.just("Deployment"), workload("Deployment")),
    st.tuples(st.just("ReplicaSet"), workload("ReplicaSet")),
    st.tuples(st.just("Pod"), pod()),
    st.tuples(st.just("Node"), node()),
    st.tuples(st.just("Namespace"), namespace()),
)
RES: dict[str, Res] = {
    "Deployment": DEPLOYMENTS,
    "ReplicaSet": REPLICASETS,
    "Pod": PODS,
    "Node": NODES,
    "Namespace": NAMESPACES,
}


async def write(
    cp: ControlPlane, kind: str, obj: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any] | None:
    """Create, then patch the status (merge, as `kubectl patch --subresource=status` sends it)."""
    res = RES[kind]
    namespace = NS if res.namespaced else None
    try:
        created = await cp.client.create(res, obj, namespace=namespace)
        name = created["metadata"]["name"]
        return await cp.client.patch(
            res, name, {"status": status}, namespace=namespace, subresource="status", type="merge"
        )
    except KedgeError:  # refused by validation: nothing for the controllers to see
        return None


async def reconciled(cp: ControlPlane, kind: str, obj: dict[str, Any]) -> bool:
    """The owning controller acted on the written object after it was written."""
    name = obj["metadata"]["name"]
    if kind == "Deployment":
        d = await cp.client.get(DEPLOYMENTS, name, namespace=NS)
        return (d.get("status") or {}).get("observedGeneration") == d["metadata"].get("generation") and any(
            c.get("type") == "Available" for c in d["status"].get("conditions") or []
        )
    if kind == "ReplicaSet":
        rs = await cp.client.get(REPLICASETS, name, namespace=NS)
        return (rs.get("status") or {}).get("replicas") == (rs.get("spec") or {}).get("replicas")
    if kind == "Namespace":
        await cp.client.get(SERVICEACCOUNTS, "default", namespace=name)
        return True
    return True  # pods and nodes: the scheduler, node lifecycle and pod GC show in /readyz


@pytest.fixture
async def shapes_ns(controlplane: ControlPlane) -> ControlPlane:
    if not controlplane.embedded:
        pytest.skip("asserts kedge's own /readyz controller checks")
    await controlplane.client.create(NAMESPACES, {"metadata": {"name": NS}})
    await eventually_async(
        lambda: controlplane.client.get(SERVICEACCOUNTS, "default", namespace=NS), within=10
    )
    return controlplane


@settings(
    max_examples=30,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: bounded time
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=SHAPES)
async def test_random_shapes_never_stop_the_control_plane(shapes_ns: ControlPlane, shape: Any) -> None:
    cp = shapes_ns
    kind, (obj, status) = shape
    written = await write(cp, kind, obj, status)
    version = await cp.client.request("GET", "/version")
    assert version is not None  # the server answers
    if written is not None:
        await eventually_async(
            lambda: reconciled(cp, kind, obj), within=10, what=f"{kind} {obj['metadata']['name']} reconciled"
        )
    r = await _readyz(cp)
    assert r.status_code == 200 and "[-]" not in r.text, f"{kind} {obj} / status {status}:\n{r.text}"


async def _readyz(cp: ControlPlane) -> httpx.Response:
    import asyncio

    return await asyncio.to_thread(readyz, cp.kubeconfig)
