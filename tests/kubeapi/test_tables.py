"""Table output (`as=Table`) as kube-apiserver prints it, and kubectl's columns built from it."""

from __future__ import annotations

from typing import Any

from tests.kubeapi.conftest import Kube, Kubectl, configmap, pod

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def table(kube: Kube, path: str, **params: str) -> dict[str, Any]:
    r = kube.get(path, headers={"Accept": TABLE}, params=params or None)
    assert r.status_code == 200, r.text
    body = dict(r.json())
    assert body["kind"] == "Table" and body["apiVersion"] == "meta.k8s.io/v1"
    return body


def test_pod_table(kube: Kube, ns: str) -> None:
    assert kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p", nodeName="tbl-node")).status_code == 201
    t = table(kube, f"/api/v1/namespaces/{ns}/pods")
    cols = [(c["name"], c["type"], c["priority"]) for c in t["columnDefinitions"]]
    assert cols == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ]
    assert t["columnDefinitions"][0]["format"] == "name"
    [row] = t["rows"]
    assert row["cells"][:4] == ["p", "0/1", "Pending", "0"]
    assert row["cells"][5:] == ["<none>", "tbl-node", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["name"] == "p"
    assert "resourceVersion" in t["metadata"]
    single = table(kube, f"/api/v1/namespaces/{ns}/pods/p")
    assert [r["cells"][0] for r in single["rows"]] == ["p"]


def test_configmap_and_namespace_tables(kube: Kube, ns: str) -> None:
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("c", {"a": "1", "b": "2"}))
    t = table(kube, f"/api/v1/namespaces/{ns}/configmaps", fieldSelector="metadata.name=c")
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert t["rows"][0]["cells"][:2] == ["c", 2]
    t = table(kube, f"/api/v1/namespaces/{ns}")
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert t["rows"][0]["cells"][:2] == [ns, "Active"]


def test_kubectl_get_prints_server_columns(kubectl: Kubectl, kube: Kube, ns: str) -> None:
    kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p"))
    lines = kubectl("-n", ns, "get", "pods").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["p", "0/1", "Pending", "0"]
    wide = kubectl("-n", ns, "get", "pods", "-o", "wide").stdout.splitlines()[0]
    assert wide.split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("cfg", {"k": "v"}))
    out = kubectl("-n", ns, "get", "cm", "cfg").stdout.splitlines()
    assert out[0].split() == ["NAME", "DATA", "AGE"] and out[1].split()[:2] == ["cfg", "1"]


def test_node_table(kube: Kube, kubectl: Kubectl) -> None:
    name = "tbl-node-x"
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"node-role.kubernetes.io/edge": ""}},
        "status": {"nodeInfo": {"kubeletVersion": "v1.32.0-kedge"}},
    }
    r = kube.post("/api/v1/nodes", node)
    assert r.status_code == 201, r.text
    try:
        lines = kubectl("get", "node", name).stdout.splitlines()
        assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        cells = lines[1].split()
        assert cells[:3] == [name, "Unknown", "edge"] and cells[-1] == "v1.32.0-kedge"
    finally:
        kube.delete(f"/api/v1/nodes/{name}")


def test_event_table_and_kubectl_get_events(kube: Kube, kubectl: Kubectl, ns: str) -> None:
    ev = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "p.1"},
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": ns},
        "source": {"component": "kubelet", "host": "edge-1"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 3,
    }
    r = kube.post(f"/api/v1/namespaces/{ns}/events", ev)
    assert r.status_code == 201, r.text
    t = table(kube, f"/api/v1/namespaces/{ns}/events")
    assert [c["name"] for c in t["columnDefinitions"] if c["priority"] == 0] == [
        "Last Seen",
        "Type",
        "Reason",
        "Object",
        "Message",
    ]
    cells = t["rows"][0]["cells"]
    assert cells[1:7] == [
        "Warning",
        "BackOff",
        "pod/p",
        "",
        "kubelet, edge-1",
        "Back-off restarting failed container",
    ]
    assert cells[8:] == [3, "p.1"]
    header = kubectl("-n", ns, "get", "events").stdout.splitlines()[0]
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
