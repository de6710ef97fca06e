"""CustomResourceDefinitions: served at once, every served version, status subresource, printer
columns, cluster scope, and gone when the CRD is deleted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, Kubectl, custom_resource_definition


def crd_body(group: str, scope: str = "Namespaced") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer"}, "color": {"type": "string"}},
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    }
    cols = [
        {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    ]
    versions = [
        {
            "name": "v1",
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": schema},
            "additionalPrinterColumns": cols,
        },
        {
            "name": "v1beta1",
            "served": True,
            "storage": False,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": schema},
        },
    ]
    return custom_resource_definition(group, "Widget", versions, scope, shortNames=["wdg"])


@pytest.fixture
def crd(kube: Kube) -> Iterator[str]:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    r = kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd_body(group))
    assert r.status_code == 201, r.text
    name = f"widgets.{group}"

    def established() -> bool:
        c = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
        conds = (c.get("status") or {}).get("conditions") or []
        return any(x["type"] == "Established" and x["status"] == "True" for x in conds)

    eventually(established, 10, what=f"CRD {name} Established")
    eventually(lambda: kube.get(f"/apis/{group}/v1").status_code == 200, 10, what=f"{group}/v1 served")
    yield group
    kube.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")


def widget(name: str, group: str, size: int = 1, version: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/{version}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }


def test_crd_serves_its_kind_in_discovery_and_crud(kube: Kube, crd: str, ns: str) -> None:
    doc = kube.get(f"/apis/{crd}/v1").json()
    entries = {r["name"]: r for r in doc["resources"]}
    assert entries["widgets"]["kind"] == "Widget" and entries["widgets"]["namespaced"] is True
    assert entries["widgets"]["shortNames"] == ["wdg"]
    assert "widgets/status" in entries
    groups = {g["name"]: g for g in kube.get("/apis").json()["groups"]}
    assert {v["version"] for v in groups[crd]["versions"]} == {"v1", "v1beta1"}
    path = f"/apis/{crd}/v1/namespaces/{ns}/widgets"
    r = kube.post(path, widget("w1", crd, 3))
    assert r.status_code == 201, r.text
    assert r.json()["metadata"]["generation"] == 1
    got = kube.get(f"/apis/{crd}/v1beta1/namespaces/{ns}/widgets/w1")
    assert got.status_code == 200 and got.json()["spec"]["size"] == 3
    assert got.json()["apiVersion"] == f"{crd}/v1beta1"
    assert kube.get(f"{path}/w1").json()["apiVersion"] == f"{crd}/v1"
    assert kube.post(path, widget("w1", crd)).status_code == 409
    r = kube.get(f"{path}/nope")
    assert r.status_code == 404 and r.json()["message"] == f'widgets.{crd} "nope" not found'


def test_custom_resource_status_subresource_and_generation(kube: Kube, crd: str, ns: str) -> None:
    path = f"/apis/{crd}/v1/namespaces/{ns}/widgets"
    obj = kube.post(path, widget("w", crd, 1)).json()
    obj["status"] = {"phase": "Ready"}
    obj["spec"]["size"] = 2
    r = kube.put(f"{path}/w/status", obj)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["status"] == {"phase": "Ready"} and after["spec"]["size"] == 1
    assert after["metadata"]["generation"] == 1
    after["spec"]["size"] = 5
    after["status"] = {"phase": "Ignored"}
    r = kube.put(f"{path}/w", after)
    assert r.status_code == 200
    assert r.json()["spec"]["size"] == 5 and r.json()["status"] == {"phase": "Ready"}
    assert r.json()["metadata"]["generation"] == 2


def test_custom_resource_prunes_unknown_fields_and_refuses_strategic_merge(
    kube: Kube, crd: str, ns: str
) -> None:
    path = f"/apis/{crd}/v1/namespaces/{ns}/widgets"
    body = widget("w", crd)
    body["spec"]["bogus"] = True
    r = kube.post(path, body, params={"fieldValidation": "Strict"})
    assert r.status_code == 400 and 'unknown field "spec.bogus"' in r.json()["message"]
    r = kube.post(path, body, params={"fieldValidation": "Ignore"})
    assert r.status_code == 201 and "bogus" not in r.json()["spec"]
    r = kube.patch(f"{path}/w", {"spec": {"size": 9}}, "application/strategic-merge-patch+json")
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = kube.patch(f"{path}/w", {"spec": {"size": 9}}, "application/merge-patch+json")
    assert r.status_code == 200 and r.json()["spec"]["size"] == 9


def test_kubectl_get_shows_printer_columns(kubectl: Kubectl, kube: Kube, crd: str, ns: str) -> None:
    kube.post(f"/apis/{crd}/v1/namespaces/{ns}/widgets", widget("w", crd, 7))
    out = kubectl("-n", ns, "get", f"widgets.{crd}").stdout
    header = out.splitlines()[0].split()
    assert header[:3] == ["NAME", "SIZE", "PHASE"]
    assert out.splitlines()[1].split()[:2] == ["w", "7"]


def test_deleting_the_crd_stops_serving_its_kind(kube: Kube, ns: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    assert (
        kube.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd_body(group, "Cluster")
        ).status_code
        == 201
    )
    path = f"/apis/{group}/v1/widgets"
    eventually(lambda: kube.post(path, widget("c1", group)).status_code == 201, 10, what="a widget created")
    assert kube.get(f"{path}/c1").json()["metadata"].get("namespace") is None
    kube.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")
    eventually(lambda: kube.get(path).status_code == 404, 30, what="widgets gone")
    eventually(lambda: kube.get(f"/apis/{group}/v1").status_code == 404, 30, what=f"{group}/v1 gone")


def test_invalid_crd_is_422(kube: Kube) -> None:
    body = crd_body("bad.example.com")
    body["metadata"]["name"] = "wrong.example.com"
    r = kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"


def test_preferred_version_is_kube_aware_and_patches_go_through_any_served_version(
    kube: Kube, kubectl: Kubectl, ns: str
) -> None:
    """KubeEdge's device CRDs list v1alpha2 before v1beta1 (stored): the real server still prefers
    v1beta1, so kubectl reads and patches through it, and a patch sent to v1alpha2 applies too."""
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    body = crd_body(group)
    _v1, v1beta1 = body["spec"]["versions"]
    alpha = {**v1beta1, "name": "v1alpha2", "storage": False}
    body["spec"]["versions"] = [alpha, {**v1beta1, "storage": True}]
    name = f"widgets.{group}"
    assert kube.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body).status_code == 201
    try:
        eventually(lambda: kube.get(f"/apis/{group}/v1beta1").status_code == 200, 10, what="served")
        groups = {g["name"]: g for g in kube.get("/apis").json()["groups"]}
        assert groups[group]["preferredVersion"]["version"] == "v1beta1"
        assert kube.get(f"/apis/{group}").json()["preferredVersion"]["version"] == "v1beta1"
        path = f"/apis/{group}/v1beta1/namespaces/{ns}/widgets"
        assert kube.post(path, widget("w", group, 1, "v1beta1")).status_code == 201
        merge = "application/merge-patch+json"
        r = kube.patch(f"/apis/{group}/v1alpha2/namespaces/{ns}/widgets/w", {"spec": {"size": 2}}, merge)
        assert r.status_code == 200, r.text
        assert r.json()["apiVersion"] == f"{group}/v1alpha2" and r.json()["spec"]["size"] == 2
        assert kube.get(f"{path}/w").json()["apiVersion"] == f"{group}/v1beta1"
        kubectl("patch", f"widgets.{group}", "w", "-n", ns, "--type", "merge", "-p", '{"spec":{"size":3}}')
        assert kube.get(f"{path}/w").json()["spec"]["size"] == 3
    finally:
        kube.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")


def test_custom_resources_have_sorted_keys(kube: Kube, crd: str, ns: str) -> None:
    """A custom resource is an unstructured map on the real server: Go writes map keys sorted."""
    body = {
        "spec": {"size": 2},
        "metadata": {"name": "w", "labels": {"z": "1"}},
        "kind": "Widget",
        "apiVersion": f"{crd}/v1",
    }
    created = kube.post(f"/apis/{crd}/v1/namespaces/{ns}/widgets", body)
    assert created.status_code == 201, created.text
    for raw in (created.content, kube.get(f"/apis/{crd}/v1/namespaces/{ns}/widgets/w").content):
        assert [k for k, _ in json.loads(raw, object_pairs_hook=lambda p: p)] == [
            "apiVersion",
            "kind",
            "metadata",
            "spec",
        ]
        meta = json.loads(raw)["metadata"]
        assert list(meta) == sorted(meta)
