"""Discovery documents, version and health endpoints."""

from __future__ import annotations

from tests.kubeapi.conftest import Kube, Kubectl


def test_version_and_health(kube: Kube) -> None:
    v = kube.get("/version").json()
    assert v["major"] == "1" and v["gitVersion"].startswith("v1.")
    for path in ("/healthz", "/livez", "/readyz"):
        r = kube.get(path)
        assert r.status_code == 200 and r.text == "ok"


def test_core_group_discovery(kube: Kube) -> None:
    api = kube.get("/api").json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    doc = kube.get("/api/v1").json()
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    res = {r["name"]: r for r in doc["resources"]}
    assert res["pods"]["kind"] == "Pod" and res["pods"]["namespaced"] is True
    assert "po" in res["pods"]["shortNames"]
    assert set(res["pods"]["verbs"]) >= {
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    for sub in ("pods/status", "pods/binding", "nodes/status", "serviceaccounts/token", "namespaces/status"):
        assert sub in res, sub
    assert res["namespaces"]["namespaced"] is False and res["nodes"]["namespaced"] is False


def test_group_discovery(kube: Kube) -> None:
    groups = {g["name"]: g for g in kube.get("/apis").json()["groups"]}
    for g in (
        "apps",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "authorization.k8s.io",
    ):
        assert g in groups, g
    assert groups["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    apps = kube.get("/apis/apps/v1").json()
    res = {r["name"]: r for r in apps["resources"]}
    assert {"deployments", "deployments/status", "deployments/scale"} <= set(res)
    assert kube.get("/apis/apps").json()["kind"] == "APIGroup"
    assert {r["name"] for r in kube.get("/apis/coordination.k8s.io/v1").json()["resources"]} >= {"leases"}
    assert kube.get("/apis/nope.example.com/v1").status_code == 404


def test_kubectl_api_resources(kubectl: Kubectl) -> None:
    out = kubectl("api-resources").stdout
    for name in ("pods", "deployments", "leases", "customresourcedefinitions", "flowschemas"):
        assert name in out
