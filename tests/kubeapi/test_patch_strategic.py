"""PATCH semantics a real kube-apiserver shows: strategic merge (with the directives kubectl and edgecore
send), JSON patch and merge patch errors, and the node/pod status patches a real edgecore sent in the
recorded KubeEdge session, replayed against the server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubeapi.conftest import Kube, Kubectl, deployment, pod

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"
CAPTURE = Path(__file__).parent.parent / "unit" / "protocol" / "data" / "capture.jsonl"


def pods(ns: str, name: str = "", sub: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/pods" + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def two_containers(kube: Kube, ns: str) -> dict[str, Any]:
    body = pod("p")
    body["spec"]["containers"] = [
        {
            "name": "a",
            "image": "busybox:1.36",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        },
        {"name": "b", "image": "busybox:1.36"},
    ]
    r = kube.post(pods(ns), body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def deployment_two_containers(kube: Kube, ns: str) -> str:
    """A Deployment: its pod template takes any container change (a Pod's spec would refuse it)."""
    labels = {"app": "p"}
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "p"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "busybox:1.36",
                            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                        },
                        {"name": "b", "image": "busybox:1.36"},
                    ]
                },
            },
        },
    }
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    r = kube.post(path, body)
    assert r.status_code == 201, r.text
    return f"{path}/p"


def test_strategic_merge_merges_containers_and_env_by_name(kube: Kube, ns: str) -> None:
    path = deployment_two_containers(kube, ns)
    patch = {"name": "a", "image": "busybox:1.37", "env": [{"name": "Y", "value": "9"}]}
    r = kube.patch(
        path,
        {"metadata": {"labels": {"x": "1"}}, "spec": {"template": {"spec": {"containers": [patch]}}}},
        SMP,
    )
    assert r.status_code == 200, r.text
    spec = r.json()["spec"]["template"]["spec"]
    assert [(c["name"], c["image"]) for c in spec["containers"]] == [
        ("a", "busybox:1.37"),
        ("b", "busybox:1.36"),
    ]
    assert spec["containers"][0]["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "9"}]
    # A JSON merge patch replaces lists wholesale, where a strategic one would merge them.
    r = kube.patch(path, {"spec": {"template": {"spec": {"containers": [patch]}}}}, MERGE)
    assert r.status_code == 200, r.text
    assert [c["name"] for c in r.json()["spec"]["template"]["spec"]["containers"]] == ["a"]
    two_containers(kube, ns)
    r = kube.patch(pods(ns, "p"), {"metadata": {"finalizers": ["example.com/x"]}}, MERGE)
    r = kube.patch(pods(ns, "p"), {"metadata": {"finalizers": ["example.com/y"]}}, MERGE)
    assert r.json()["metadata"]["finalizers"] == ["example.com/y"]
    r = kube.patch(pods(ns, "p"), {"metadata": {"finalizers": None}}, MERGE)
    assert "finalizers" not in r.json()["metadata"]


def test_strategic_directives_on_labels_finalizers_and_tolerations(kube: Kube, ns: str) -> None:
    two_containers(kube, ns)
    path = pods(ns, "p")
    r = kube.patch(
        path, {"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["example.com/one"]}}, SMP
    )
    assert r.status_code == 200, r.text
    # New items of a merged scalar list go first; $deleteFromPrimitiveList removes one; null deletes a key.
    r = kube.patch(path, {"metadata": {"finalizers": ["example.com/two"], "labels": {"a": None}}}, SMP)
    meta = r.json()["metadata"]
    assert meta["finalizers"] == ["example.com/two", "example.com/one"]
    assert meta["labels"] == {"b": "2"}
    r = kube.patch(
        path, {"metadata": {"$setElementOrder/finalizers": ["example.com/one", "example.com/two"]}}, SMP
    )
    assert r.json()["metadata"]["finalizers"] == ["example.com/one", "example.com/two"]
    r = kube.patch(
        path,
        {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": ["example.com/one", "example.com/two"],
                "labels": {"$patch": "replace", "c": "3"},
            }
        },
        SMP,
    )
    meta = r.json()["metadata"]
    assert "finalizers" not in meta and meta["labels"] == {"c": "3"}
    # Pod tolerations have no merge key: a strategic patch replaces the list (a pod may only add
    # tolerations, so the new list keeps the admitted ones; a merge would have duplicated them).
    admitted = kube.get(path).json()["spec"]["tolerations"]
    wanted = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}, *admitted]
    r = kube.patch(path, {"spec": {"tolerations": wanted}}, SMP)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["tolerations"] == wanted


def test_patch_errors(kube: Kube, ns: str) -> None:
    two_containers(kube, ns)
    path = pods(ns, "p")
    r = kube.patch(path, [{"op": "test", "path": "/metadata/name", "value": "nope"}], JSONP)
    assert r.status_code == 422 and r.json()["kind"] == "Status", r.text
    r = kube.patch(path, [{"op": "remove", "path": "/metadata/labels/missing"}], JSONP)
    assert r.status_code == 422, r.text
    r = kube.patch(path, [{"op": "add", "path": "/metadata/labels", "value": {"j": "1"}}], JSONP)
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {"j": "1"}
    r = kube.patch(path, {"metadata": {"labels": {"$patch": "bogus"}}}, SMP)
    assert r.status_code >= 400, r.text
    r = kube.patch(path, "{not json", SMP)
    assert r.status_code == 400, r.text
    r = kube.patch(path, {"metadata": {"labels": {"x": "1"}}}, "application/x-unknown")
    assert r.status_code == 415, r.text


def test_kubectl_patch_types(kubectl: Kubectl, ns: str, kube: Kube) -> None:
    two_containers(kube, ns)
    patch = ("-n", ns, "patch", "pod", "p")
    kubectl(*patch, "-p", json.dumps({"spec": {"containers": [{"name": "b", "image": "busybox:1.37"}]}}))
    kubectl(*patch, "--type=merge", "-p", '{"metadata":{"annotations":{"n":"1"}}}')
    kubectl(*patch, "--type=json", "-p", '[{"op":"add","path":"/metadata/labels","value":{"l":"2"}}]')
    p = kube.get(pods(ns, "p")).json()
    assert [c["image"] for c in p["spec"]["containers"]] == ["busybox:1.36", "busybox:1.37"]
    assert p["metadata"]["annotations"] == {"n": "1"} and p["metadata"]["labels"] == {"l": "2"}
    res = kubectl(
        *patch, "--type=json", "-p", '[{"op":"test","path":"/metadata/name","value":"x"}]', check=False
    )
    assert res.returncode != 0


# ------------------------------------------------------------- the recorded edgecore patches


def _frames() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]


def _recorded(kind: str, name: str) -> list[dict[str, Any]]:
    return [
        json.loads(f["msg"]["content"])
        for f in _frames()
        if f["dir"] == "edge->cloud"
        and f["msg"]["route"].get("operation") == "patch"
        and f["msg"]["route"]["resource"].endswith(f"/{kind}patch/{name}")
    ]


@pytest.fixture
def node(kube: Kube) -> Iterator[str]:
    """The node edgecore registered in the recording, under a unique name."""
    insert = next(
        f["msg"]["content"]
        for f in _frames()
        if f["msg"]["route"].get("operation") == "insert" and "/node/" in f["msg"]["route"]["resource"]
    )
    body = json.loads(json.dumps(insert))
    name = f"edge-{uuid.uuid4().hex[:8]}"
    body.update(apiVersion="v1", kind="Node")
    body["metadata"] = {"name": name, "labels": body["metadata"]["labels"]}
    r = kube.post("/api/v1/nodes", body)
    assert r.status_code == 201, r.text
    yield name
    kube.delete(f"/api/v1/nodes/{name}")


def test_recorded_node_status_patches(kube: Kube, node: str) -> None:
    patches = _recorded("node", "ke-edge-1")
    assert len(patches) >= 3
    before = kube.get(f"/api/v1/nodes/{node}").json()
    for patch in patches:
        r = kube.patch(f"/api/v1/nodes/{node}/status", patch, SMP)
        assert r.status_code == 200, r.text
    st = r.json()["status"]
    # Conditions merged by type: the heartbeat-only patches keep status/reason/message from earlier ones.
    conds = {c["type"]: c for c in st["conditions"]}
    assert [c["type"] for c in st["conditions"]][:4] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "EdgeReady"
    assert conds["MemoryPressure"]["reason"] == "KubeletHasSufficientMemory"
    assert conds["Ready"]["lastHeartbeatTime"] == patches[-1]["status"]["conditions"][-1]["lastHeartbeatTime"]
    assert st["addresses"] == before["status"]["addresses"]
    assert st["capacity"] == before["status"]["capacity"]


def test_recorded_pod_status_patches(kube: Kube, ns: str, node: str) -> None:
    body = pod("demo-plain", nodeName=node, hostNetwork=True)
    created = kube.post(pods(ns), body).json()
    uid = created["metadata"]["uid"]
    patches = _recorded("pod", "demo-plain")
    assert len(patches) >= 4
    # edgecore sends the pod's UID in the patch: a stale one would change an immutable field, and
    # kube-apiserver answers 422 (a patch carries no preconditions, unlike a PUT).
    stale = patches[0]["metadata"]["uid"]
    r = kube.patch(pods(ns, "demo-plain", "status"), patches[0], SMP)
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == "Invalid"
    assert (
        r.json()["message"]
        == f'Pod "demo-plain" is invalid: metadata.uid: Invalid value: "{stale}": field is immutable'
    )
    assert r.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "{stale}": field is immutable',
            "field": "metadata.uid",
        }
    ]
    for patch in patches[:3]:
        patch["metadata"]["uid"] = uid
        r = kube.patch(pods(ns, "demo-plain", "status"), patch, SMP)
        assert r.status_code == 200, r.text
    st = r.json()["status"]
    assert st["phase"] == "Running"
    assert [c["type"] for c in st["conditions"]] == [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and "reason" not in ready and "message" not in ready  # nulls deleted
    assert ready["lastProbeTime"] is None  # metav1.Time zero value
    assert st["containerStatuses"][0]["state"] == {"running": {"startedAt": "2026-11-28T09:34:44Z"}}
    assert st["podIPs"] == [{"ip": "192.0.2.2"}] and st["qosClass"] == "BestEffort"
    # The spec is untouched by status patches.
    assert r.json()["spec"]["containers"] == created["spec"]["containers"]


def test_kubectl_commands_that_send_strategic_patches(
    kubectl: Kubectl, kube: Kube, ns: str, node: str
) -> None:
    """taint, cordon, set image and rollout restart: the patches kubectl itself builds."""
    kubectl("taint", "nodes", node, "dedicated=edge:NoSchedule")
    kubectl("cordon", node)
    n = kube.get(f"/api/v1/nodes/{node}").json()
    assert {"key": "dedicated", "value": "edge", "effect": "NoSchedule"} in n["spec"]["taints"]
    assert n["spec"]["unschedulable"] is True
    kubectl("taint", "nodes", node, "dedicated:NoSchedule-")
    kubectl("uncordon", node)
    n = kube.get(f"/api/v1/nodes/{node}").json()
    assert all(t["key"] != "dedicated" for t in n["spec"].get("taints", []))
    assert not n["spec"].get("unschedulable")
    two = [{"name": "a", "image": "nginx:1.25"}, {"name": "b", "image": "busybox:1.36"}]
    dep = deployment("d", replicas=None, containers=two)
    assert kube.post(f"/apis/apps/v1/namespaces/{ns}/deployments", dep).status_code == 201
    kubectl("-n", ns, "set", "image", "deployment/d", "b=busybox:1.37")
    kubectl("-n", ns, "rollout", "restart", "deployment/d")
    d = kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/d").json()
    tpl = d["spec"]["template"]
    assert [(c["name"], c["image"]) for c in tpl["spec"]["containers"]] == [
        ("a", "nginx:1.25"),
        ("b", "busybox:1.37"),
    ]
    assert "kubectl.kubernetes.io/restartedAt" in tpl["metadata"]["annotations"]
    assert d["metadata"]["generation"] == 3
