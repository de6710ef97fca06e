"""Built-in validation runs on every write path, each answering the same 422 a real kube-apiserver
gives: create, update, the three patch types, server-side apply, the status subresource, and the
items of a `kind: List` kubectl sends one by one. A refused write changes nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kubeapi.conftest import Kube, Kubectl, deployment

REPLICAS_CAUSE = {
    "reason": "FieldValueInvalid",
    "message": "Invalid value: -1: must be greater than or equal to 0",
    "field": "spec.replicas",
}


def assert_refused(r: Any, name: str, cause: dict[str, str]) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["message"] == f'Deployment.apps "{name}" is invalid: {cause["field"]}: {cause["message"]}'
    assert body["details"] == {"name": name, "group": "apps", "kind": "Deployment", "causes": [cause]}


def test_create_refused(kube: Kube, ns: str) -> None:
    r = kube.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("neg", -1))
    assert_refused(r, "neg", REPLICAS_CAUSE)
    assert kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/neg").status_code == 404


@pytest.mark.parametrize(
    ("method", "ctype", "body"),
    [
        ("PUT", "application/json", None),
        ("PATCH", "application/merge-patch+json", {"spec": {"replicas": -1}}),
        ("PATCH", "application/strategic-merge-patch+json", {"spec": {"replicas": -1}}),
        ("PATCH", "application/json-patch+json", [{"op": "replace", "path": "/spec/replicas", "value": -1}]),
        ("PATCH", "application/apply-patch+yaml", None),
    ],
    ids=["update", "merge", "strategic", "json", "apply"],
)
def test_update_paths_refused(kube: Kube, ns: str, method: str, ctype: str, body: Any) -> None:
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/keep"
    created = kube.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("keep"))
    assert created.status_code == 201, created.text
    params = None
    if method == "PUT":
        body = created.json()
        body["spec"]["replicas"] = -1
    elif ctype == "application/apply-patch+yaml":
        body = json.dumps(deployment("keep", -1))  # JSON is YAML
        params = {"fieldManager": "test", "force": "true"}
    r = kube.request(method, path, body, ctype=ctype, params=params)
    assert_refused(r, "keep", REPLICAS_CAUSE)
    stored = kube.get(path).json()
    assert stored["spec"]["replicas"] == 1
    assert stored["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]


def test_status_subresource_refused(kube: Kube, ns: str) -> None:
    created = kube.post(f"/apis/apps/v1/namespaces/{ns}/deployments", deployment("st"))
    assert created.status_code == 201, created.text
    body = created.json()
    body["status"] = {"replicas": 1, "readyReplicas": 2}
    r = kube.put(f"/apis/apps/v1/namespaces/{ns}/deployments/st/status", body)
    cause = {
        "reason": "FieldValueInvalid",
        "message": "Invalid value: 2: cannot be greater than status.replicas",
        "field": "status.readyReplicas",
    }
    assert_refused(r, "st", cause)


def test_list_items_validated_one_by_one(kubectl: Kubectl, kube: Kube, ns: str) -> None:
    items = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}, "data": {"k": "v"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "data": {"bad key/": "v"}},
    ]
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    res = kubectl("-n", ns, "create", "-f", "-", input=doc, check=False)
    assert res.returncode != 0
    assert 'ConfigMap "bad" is invalid: data[bad key/]: Invalid value: "bad key/"' in res.stderr
    assert kube.get(f"/api/v1/namespaces/{ns}/configmaps/good").status_code == 200
    assert kube.get(f"/api/v1/namespaces/{ns}/configmaps/bad").status_code == 404
