"""labelSelector and fieldSelector on lists, kubectl -l and --field-selector, as kube-apiserver does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kubeapi.conftest import UNSCHEDULED, Kube, Kubectl, configmap, pod


def names(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.text
    return sorted(i["metadata"]["name"] for i in resp.json()["items"])


@pytest.fixture
def labelled(kube: Kube, ns: str) -> str:
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ):
        r = kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap(name, labels=labels))
        assert r.status_code == 201, r.text
    return ns


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("tier in (front,back)", ["a", "b"]),
        ("tier notin (front)", ["b", "c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier!=back", ["a"]),
        ("app in (web),!missing", ["a", "b"]),
    ],
)
def test_label_selectors(kube: Kube, labelled: str, selector: str, expected: list[str]) -> None:
    r = kube.get(f"/api/v1/namespaces/{labelled}/configmaps", params={"labelSelector": selector})
    assert [n for n in names(r) if n != "kube-root-ca.crt"] == expected


@pytest.mark.parametrize("selector", ["app=", "a b", "app in (x", "=x", "-bad=1", "app=a$b"])
def test_invalid_label_selector_is_400(kube: Kube, labelled: str, selector: str) -> None:
    r = kube.get(f"/api/v1/namespaces/{labelled}/configmaps", params={"labelSelector": selector})
    if selector == "app=":
        assert r.status_code == 200  # an empty value is valid
        return
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["reason"] == "BadRequest"


def test_kubectl_label_selector(kubectl: Kubectl, labelled: str) -> None:
    out = kubectl("-n", labelled, "get", "configmaps", "-l", "app=web,tier in (front)", "-o", "name").stdout
    assert out.split() == ["configmap/a"]


def test_pod_field_selectors(kube: Kube, ns: str) -> None:
    node = "fs-node-does-not-exist"
    # "free" names a scheduler nobody runs, so a cluster's scheduler never binds it (the test must
    # not depend on whether the server under test has one)
    for name, spec in (("bound", {"nodeName": node}), ("free", {"schedulerName": UNSCHEDULED})):
        assert kube.post(f"/api/v1/namespaces/{ns}/pods", pod(name, **spec)).status_code == 201
    base = f"/api/v1/namespaces/{ns}/pods"
    assert names(kube.get(base, params={"fieldSelector": f"spec.nodeName={node}"})) == ["bound"]
    assert names(kube.get(base, params={"fieldSelector": "spec.nodeName="})) == ["free"]
    assert names(kube.get(base, params={"fieldSelector": "spec.nodeName!="})) == ["bound"]
    assert names(kube.get(base, params={"fieldSelector": "status.phase=Pending,metadata.name=free"})) == [
        "free"
    ]
    assert names(kube.get(base, params={"fieldSelector": "status.phase!=Pending"})) == []
    # All namespaces, as a kubelet lists its pods.
    r = kube.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node}"})
    assert names(r) == ["bound"]


def test_unsupported_field_selector_is_400_with_kubernetes_message(kube: Kube, ns: str) -> None:
    r = kube.get(f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "spec.hostname=x"})
    assert r.status_code == 400, r.text
    assert r.json()["message"] == "field label not supported: spec.hostname"
    r = kube.get(f"/api/v1/namespaces/{ns}/configmaps", params={"fieldSelector": "data.x=1"})
    assert r.status_code == 400, r.text
    assert "data.x" in r.json()["message"]
    r = kube.get("/api/v1/nodes", params={"fieldSelector": "spec.unschedulable=false"})
    assert r.status_code == 200, r.text


def test_kubectl_field_selector(kubectl: Kubectl, kube: Kube, ns: str) -> None:
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("one"))
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("two"))
    out = kubectl("-n", ns, "get", "cm", "--field-selector", "metadata.name=two", "-o", "name").stdout
    assert out.split() == ["configmap/two"]
