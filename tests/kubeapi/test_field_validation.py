"""Server-side field validation (fieldValidation=Ignore|Warn|Strict) at every depth.

What a real kube-apiserver does: decoding drops every field the type does not declare, however deep;
Strict fails a create/update with 400 BadRequest `<Kind> in version "<v>" cannot be handled as a
<Kind>: strict decoding error: unknown field "<path>"` and a json/merge/strategic patch with 422
Invalid on field `patch`; Warn answers one `Warning: 299 - "unknown field \\"<path>\\""` per field.
Custom resources are pruned against their structural schema: an `x-kubernetes-embedded-resource`
object has apiVersion/kind/metadata, an `x-kubernetes-preserve-unknown-fields` subtree keeps anything.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, Kubectl, gadget_crd

IMAGE_POLICY = "spec.template.spec.containers[0].imagePolicy"
STRICT = {"fieldValidation": "Strict"}


def deployment(name: str, **container_extra: Any) -> dict[str, Any]:
    labels = {"app": name}
    container = {"name": "web", "image": "busybox:1.36", **container_extra}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def deploy_path(ns: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments" + (f"/{name}" if name else "")


def test_strict_rejects_a_nested_unknown_field_with_its_full_path(kube: Kube, ns: str) -> None:
    r = kube.post(deploy_path(ns), deployment("d", imagePolicy="Always"), params=STRICT)
    assert r.status_code == 400, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "BadRequest"
    assert status["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        f'strict decoding error: unknown field "{IMAGE_POLICY}"'
    )
    assert kube.get(deploy_path(ns, "d")).status_code == 404


def test_strict_names_every_unknown_field(kube: Kube, ns: str) -> None:
    body = deployment("d", imagePolicy="Always", ports=[{"containerPort": 80, "hostPrt": 8080}])
    body["metadata"]["labelz"] = {"a": "b"}
    r = kube.post(deploy_path(ns), body, params=STRICT)
    assert r.status_code == 400
    message = r.json()["message"]
    for path in ("metadata.labelz", IMAGE_POLICY, "spec.template.spec.containers[0].ports[0].hostPrt"):
        assert f'unknown field "{path}"' in message


def test_warn_creates_without_the_field_and_warns(kube: Kube, ns: str) -> None:
    r = kube.post(deploy_path(ns), deployment("d", imagePolicy="Always"), params={"fieldValidation": "Warn"})
    assert r.status_code == 201, r.text
    assert f'299 - "unknown field \\"{IMAGE_POLICY}\\""' in r.headers.get("Warning", "")
    stored = kube.get(deploy_path(ns, "d")).json()
    assert "imagePolicy" not in stored["spec"]["template"]["spec"]["containers"][0]
    r = kube.post(
        deploy_path(ns), deployment("i", imagePolicy="Always"), params={"fieldValidation": "Ignore"}
    )
    assert r.status_code == 201 and "Warning" not in r.headers
    assert "imagePolicy" not in r.json()["spec"]["template"]["spec"]["containers"][0]


def test_known_nested_fields_and_maps_pass_strict(kube: Kube, ns: str) -> None:
    body = deployment(
        "d",
        env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        resources={"limits": {"cpu": "100m", "example.com/any-resource": "1"}},
        securityContext={"capabilities": {"add": ["NET_ADMIN"]}},
    )
    body["spec"]["template"]["metadata"]["annotations"] = {"any.key/x": "y"}
    r = kube.post(deploy_path(ns), body, params=STRICT)
    assert r.status_code == 201, r.text
    assert "Warning" not in r.headers


def test_update_with_a_nested_unknown_field(kube: Kube, ns: str) -> None:
    created = kube.post(deploy_path(ns), deployment("d"), params=STRICT).json()
    changed = copy.deepcopy(created)
    changed["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "Always"
    r = kube.put(deploy_path(ns, "d"), changed, params=STRICT)
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    assert f'strict decoding error: unknown field "{IMAGE_POLICY}"' in r.json()["message"]


@pytest.mark.parametrize("ctype", ["application/merge-patch+json", "application/strategic-merge-patch+json"])
def test_patch_with_a_nested_unknown_field(kube: Kube, ns: str, ctype: str) -> None:
    kube.post(deploy_path(ns), deployment("d"), params=STRICT)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "imagePolicy": "Always"}]}}}}
    if ctype == "application/merge-patch+json":
        patch["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:1.36"
    r = kube.patch(deploy_path(ns, "d"), patch, ctype, params=STRICT)
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid"
    assert f'strict decoding error: unknown field "{IMAGE_POLICY}"' in status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == ["patch"]
    r = kube.patch(deploy_path(ns, "d"), patch, ctype, params={"fieldValidation": "Warn"})
    assert r.status_code == 200
    assert f'unknown field \\"{IMAGE_POLICY}\\"' in r.headers.get("Warning", "")
    assert "imagePolicy" not in r.json()["spec"]["template"]["spec"]["containers"][0]


# Custom resources


SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
                },
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "nested": {
                    "type": "object",
                    "properties": {"deep": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
                "byName": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "properties": {"n": {"type": "integer"}}},
                },
            },
        }
    },
}


@pytest.fixture
def gadgets(kube: Kube) -> Iterator[str]:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    name = f"gadgets.{group}"
    r = kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", gadget_crd(group, SCHEMA))
    assert r.status_code == 201, r.text
    eventually(lambda: kube.get(f"/apis/{group}/v1").status_code == 200, 10, what=f"{group}/v1 served")
    yield group
    kube.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")


def gadget(group: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec}


def test_custom_resource_embedded_and_preserved_fields_pass_strict(kube: Kube, gadgets: str, ns: str) -> None:
    template = {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t", "labels": {"a": "b"}}}
    spec = {
        "template": {**template, "spec": {"x": "y"}},
        "extra": {"anything": {"deep": [1, {"at": "all"}]}},
        "byName": {"one": {"n": 1}},
    }
    path = f"/apis/{gadgets}/v1/namespaces/{ns}/gadgets"
    r = kube.post(path, gadget(gadgets, spec), params=STRICT)
    assert r.status_code == 201, r.text
    assert "Warning" not in r.headers
    got = r.json()["spec"]
    assert got["template"]["metadata"]["name"] == "t" and got["template"]["kind"] == "Thing"
    assert got["extra"] == spec["extra"]


def test_custom_resource_nested_unknown_fields(kube: Kube, gadgets: str, ns: str) -> None:
    spec = {
        "template": {"apiVersion": "v1", "kind": "Thing", "spec": {"x": "y", "y": 1}},
        "nested": {"deep": {"a": "1", "b": 2}},
        "byName": {"one": {"n": 1, "m": 2}},
    }
    path = f"/apis/{gadgets}/v1/namespaces/{ns}/gadgets"
    r = kube.post(path, gadget(gadgets, spec), params=STRICT)
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    message = r.json()["message"]
    assert message.startswith('Gadget in version "v1" cannot be handled as a Gadget: strict decoding error:')
    for unknown in ("spec.byName.one.m", "spec.nested.deep.b", "spec.template.spec.y"):
        assert f'unknown field "{unknown}"' in message
    r = kube.post(path, gadget(gadgets, spec), params={"fieldValidation": "Warn"})
    assert r.status_code == 201
    assert r.json()["spec"]["nested"]["deep"] == {"a": "1"}
    assert r.json()["spec"]["template"]["spec"] == {"x": "y"}


# kubectl


def test_kubectl_create_of_a_nested_unknown_field(kubectl: Kubectl, ns: str) -> None:
    """Rejected whoever validates (kubectl ≥ 1.25 asks the server for Strict, older ones validate
    against /openapi/v2); with --validate=false the object is created without the field."""
    manifest = json.dumps(deployment("d", imagePolicy="Always"))
    res = kubectl("-n", ns, "create", "-f", "-", input=manifest, check=False)
    assert res.returncode != 0 and "imagePolicy" in res.stderr
    kubectl("-n", ns, "create", "--validate=false", "-f", "-", input=manifest)
    stored = kubectl.json("-n", ns, "get", "deployment", "d")
    assert "imagePolicy" not in stored["spec"]["template"]["spec"]["containers"][0]


def test_duplicate_fields(kube: Kube, ns: str) -> None:
    """The strict decoder reports a field given twice and keeps the last value."""
    path = f"/api/v1/namespaces/{ns}/configmaps"
    raw = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"dup"},"data":{"k":"v"}}'
    r = kube.post(path, raw, params=STRICT)
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    assert r.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
        'strict decoding error: duplicate field "metadata.name"'
    )
    r = kube.post(path, raw, params={"fieldValidation": "Warn"})
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dup"
    assert 'duplicate field \\"metadata.name\\"' in r.headers.get("Warning", "")
    r = kube.post(path, raw.replace('"dup"', '"ignored"'), params={"fieldValidation": "Ignore"})
    assert r.status_code == 201 and "Warning" not in r.headers
