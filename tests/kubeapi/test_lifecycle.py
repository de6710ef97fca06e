"""Pods, status subresources, generation, namespaces: lifecycle rules of the real registries."""

from __future__ import annotations

import time
from typing import Any

from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, configmap, pod, require_controllers


def pods(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/pods" + (f"/{name}" if name else "")


def test_pod_create_gets_defaults_and_pending_phase(kube: Kube, ns: str) -> None:
    p = kube.post(pods(ns), pod("p")).json()
    spec = p["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert p["status"]["phase"] == "Pending"
    assert p["status"]["qosClass"] == "BestEffort"
    tols = {(t["key"], t.get("tolerationSeconds")) for t in spec["tolerations"]}
    assert ("node.kubernetes.io/not-ready", 300) in tols and ("node.kubernetes.io/unreachable", 300) in tols


def test_unbound_pod_is_deleted_at_once(kube: Kube, ns: str) -> None:
    kube.post(pods(ns), pod("p"))
    r = kube.delete(pods(ns, "p"))
    assert r.status_code == 200
    assert kube.get(pods(ns, "p")).status_code == 404


def test_bound_pod_is_deleted_gracefully(kube: Kube, ns: str) -> None:
    kube.post(pods(ns), pod("p", nodeName="node-x"))
    r = kube.delete(pods(ns, "p"))
    assert r.status_code == 200
    meta = kube.get(pods(ns, "p")).json()["metadata"]
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 30
    r = kube.delete(pods(ns, "p"), {"gracePeriodSeconds": 0})
    assert r.status_code == 200
    assert kube.get(pods(ns, "p")).status_code == 404


def test_terminated_bound_pod_is_deleted_at_once(kube: Kube, ns: str) -> None:
    p = kube.post(pods(ns), pod("p", nodeName="node-x")).json()
    p["status"] = {"phase": "Succeeded"}
    r = kube.put(pods(ns, "p") + "/status", p)
    assert r.status_code == 200, r.text
    kube.delete(pods(ns, "p"))
    assert kube.get(pods(ns, "p")).status_code == 404


def test_binding_assigns_node_once(kube: Kube, ns: str) -> None:
    kube.post(pods(ns), pod("p"))
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    r = kube.post(pods(ns, "p") + "/binding", binding)
    assert r.status_code == 201, r.text
    assert kube.get(pods(ns, "p")).json()["spec"]["nodeName"] == "n1"
    r = kube.post(pods(ns, "p") + "/binding", dict(binding, target={"kind": "Node", "name": "n2"}))
    assert r.status_code == 409


def test_status_subresource_keeps_spec_and_status_apart(kube: Kube, ns: str) -> None:
    kube.post(pods(ns), pod("p"))

    def put(path: str, change: Any) -> Any:
        for _ in range(10):  # a scheduler may write the pod's status in between: re-read on 409
            cur = kube.get(pods(ns, "p")).json()
            change(cur)
            r = kube.put(path, cur)
            if r.status_code != 409:
                assert r.status_code == 200, r.text
                return r.json()
        raise AssertionError("kept conflicting")

    def to_running(p: Any) -> None:
        p["status"]["phase"] = "Running"
        p["spec"]["activeDeadlineSeconds"] = 5

    after = put(pods(ns, "p") + "/status", to_running)
    assert after["status"]["phase"] == "Running" and "activeDeadlineSeconds" not in after["spec"]

    def relabel(p: Any) -> None:
        p["status"]["phase"] = "Failed"
        p["metadata"]["labels"] = {"x": "y"}

    after = put(pods(ns, "p"), relabel)
    assert after["status"]["phase"] == "Running" and after["metadata"]["labels"] == {"x": "y"}


def test_generation_bumps_on_spec_change_only(kube: Kube, ns: str) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments"
    d = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    d = kube.post(path, d).json()
    assert d["metadata"]["generation"] == 1
    d = kube.patch(f"{path}/d", {"metadata": {"labels": {"l": "1"}}}, "application/merge-patch+json").json()
    assert d["metadata"]["generation"] == 1
    d = kube.patch(
        f"{path}/d",
        {"status": {"replicas": 1}},
        "application/merge-patch+json",
    ).json()
    assert d["metadata"]["generation"] == 1 and d.get("status", {}).get("replicas") is None
    d = kube.patch(
        f"{path}/d/status",
        {"status": {"observedGeneration": 1, "replicas": 1}},
        "application/merge-patch+json",
    ).json()
    assert d["status"]["replicas"] == 1 and d["metadata"]["generation"] == 1
    d = kube.patch(f"{path}/d", {"spec": {"replicas": 3}}, "application/merge-patch+json").json()
    assert d["metadata"]["generation"] == 2
    scale = kube.get(f"{path}/d/scale").json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3


def test_namespace_deletion_removes_its_objects(kube: Kube) -> None:
    require_controllers(kube, "the namespace controller empties and removes a Terminating namespace")
    name = f"gone-{int(time.time() * 1000) % 100000}"
    assert kube.post("/api/v1/namespaces", {"metadata": {"name": name}}).status_code == 201
    kube.post(f"/api/v1/namespaces/{name}/configmaps", configmap("c"))
    r = kube.delete(f"/api/v1/namespaces/{name}")
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Terminating"
    eventually(
        lambda: kube.get(f"/api/v1/namespaces/{name}").status_code == 404, 60, what=f"namespace {name} gone"
    )
    assert kube.get(f"/api/v1/namespaces/{name}/configmaps/c").status_code == 404


def test_initial_namespaces_cannot_be_deleted(kube: Kube) -> None:
    r = kube.delete("/api/v1/namespaces/default")
    assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
    assert "this namespace may not be deleted" in r.json()["message"]


def test_cluster_scoped_create_ignores_namespace_path_rules(kube: Kube) -> None:
    name = f"node-{int(time.time() * 1000) % 100000}"
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"a": "b"}},
        "status": {"capacity": {"cpu": "2"}},
    }
    r = kube.post("/api/v1/nodes", node)
    assert r.status_code == 201, r.text
    assert "namespace" not in r.json()["metadata"]
    assert r.json()["status"]["capacity"] == {"cpu": "2"}  # node status is kept on create
    assert kube.delete(f"/api/v1/nodes/{name}").status_code == 200


def test_pod_spec_is_immutable_but_for_images(kube: Kube, ns: str) -> None:
    kube.post(pods(ns), pod("p"))
    r = kube.patch(
        pods(ns, "p"),
        {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}},
        "application/strategic-merge-patch+json",
    )
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["containers"][0]["image"] == "busybox:1.37"
    r = kube.patch(pods(ns, "p"), {"spec": {"restartPolicy": "Never"}}, "application/merge-patch+json")
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"
    assert "pod updates may not change fields" in r.json()["message"]
    cur = kube.get(pods(ns, "p")).json()
    r = kube.put(pods(ns, "p"), cur)  # a full round trip of the stored pod is no change
    assert r.status_code == 200
    assert r.json()["metadata"]["resourceVersion"] == cur["metadata"]["resourceVersion"]


def test_services_get_cluster_ips_and_the_kubernetes_service_exists(kube: Kube, ns: str) -> None:
    k = kube.get("/api/v1/namespaces/default/services/kubernetes").json()
    assert k["spec"]["ports"][0]["port"] == 443 and k["spec"]["clusterIP"]
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}], "type": "NodePort"},
    }
    r = kube.post(f"/api/v1/namespaces/{ns}/services", svc)
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert (
        spec["clusterIP"]
        and spec["clusterIPs"] == [spec["clusterIP"]]
        and spec["clusterIP"] != k["spec"]["clusterIP"]
    )
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767
    assert spec["ports"][0]["targetPort"] == 80
    other = dict(svc, metadata={"name": "t"})
    other["spec"] = dict(svc["spec"], ports=[{"port": 80, "nodePort": spec["ports"][0]["nodePort"]}])
    r = kube.post(f"/api/v1/namespaces/{ns}/services", other)
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"


def test_unknown_priority_class_is_forbidden(kube: Kube, ns: str) -> None:
    r = kube.post(pods(ns), pod("p", priorityClassName="no-such-class"))
    assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
    assert r.json()["message"] == 'pods "p" is forbidden: no PriorityClass with name no-such-class was found'


def test_priority_classes_set_pod_priority(kube: Kube, ns: str) -> None:
    pcs = {
        i["metadata"]["name"]: i["value"]
        for i in kube.get("/apis/scheduling.k8s.io/v1/priorityclasses").json()["items"]
    }
    assert pcs["system-node-critical"] == 2000001000 and pcs["system-cluster-critical"] == 2000000000
    name = f"pc-{ns}"
    r = kube.post(
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": 1234,
        },
    )
    assert r.status_code == 201, r.text
    try:
        p = kube.post(pods(ns), pod("p", priorityClassName=name)).json()
        assert p["spec"]["priority"] == 1234
        p = kube.post(pods(ns), pod("q", priorityClassName="system-node-critical")).json()
        assert p["spec"]["priority"] == 2000001000
    finally:
        kube.delete(f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}")


def test_fields_added_by_admission_belong_to_nobody(kube: Kube, ns: str) -> None:
    p = kube.post(pods(ns), pod("p"), params={"fieldManager": "maker"}).json()
    assert any(v["name"].startswith("kube-api-access-") for v in p["spec"]["volumes"])
    (entry,) = [m for m in p["metadata"]["managedFields"] if m["manager"] == "maker"]
    assert entry["operation"] == "Update"
    spec = entry["fieldsV1"]["f:spec"]
    assert "f:containers" in spec and "f:restartPolicy" in spec  # sent, and defaulted at decode
    assert "f:volumes" not in spec and "f:tolerations" not in spec  # added by admission plugins
