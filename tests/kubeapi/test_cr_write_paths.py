"""A custom resource's schema is enforced on every write path, as a real kube-apiserver enforces it:
create, update, JSON and merge patch, server-side apply and the status subresource each refuse the same
invalid change with the same 422 (a strategic merge patch is refused with 415 before any validation: it
is not defined for custom resources). A refused write changes nothing stored.

And defaults on read: an object stored before its CRD declared a default shows that default on GET,
LIST and WATCH (the real server's storage decoder defaults), without being rewritten.

`kind: List` is no write path of the server: kubectl sends a List's items one by one (the Deployment
test in test_validation_paths.py shows each item validated)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, custom_resource_definition

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _schema(mode_default: bool = False) -> dict[str, Any]:
    mode: dict[str, Any] = {"type": "string"}
    if mode_default:
        mode["default"] = "auto"
    return {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}, "mode": mode},
            },
            "status": {"type": "object", "properties": {"count": {"type": "integer", "minimum": 0}}},
        },
    }


def _crd(group: str, mode_default: bool = False) -> dict[str, Any]:
    v1 = {
        "name": "v1",
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "schema": {"openAPIV3Schema": _schema(mode_default)},
    }
    return custom_resource_definition(group, "Part", [v1])


@pytest.fixture
def group(kube: Kube) -> Iterator[str]:
    g = f"p{uuid.uuid4().hex[:8]}.example.com"
    r = kube.post(CRDS, _crd(g))
    assert r.status_code == 201, r.text
    eventually(lambda: kube.get(f"/apis/{g}/v1/parts").status_code in (200, 405), 15, what=f"{g}/v1 served")
    eventually(lambda: _served(kube, g), 15, what=f"parts.{g} served in every namespace")
    yield g
    kube.delete(f"{CRDS}/parts.{g}")


def _served(kube: Kube, group: str) -> bool:
    return kube.get(f"/apis/{group}/v1/namespaces/default/parts").status_code == 200


def part(group: str, name: str, size: int = 4) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Part", "metadata": {"name": name}, "spec": {"size": size}}


def assert_refused(r: httpx.Response, group: str, name: str, field: str, detail: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["message"] == f'Part.{group} "{name}" is invalid: {field}: {detail}'
    cause = {"reason": "FieldValueInvalid", "message": detail, "field": field}
    assert body["details"] == {"name": name, "group": group, "kind": "Part", "causes": [cause]}


TOO_BIG = "Invalid value: 20: spec.size in body should be less than or equal to 10"


def test_create_refused(kube: Kube, ns: str, group: str) -> None:
    r = kube.post(f"/apis/{group}/v1/namespaces/{ns}/parts", part(group, "big", 20))
    assert_refused(r, group, "big", "spec.size", TOO_BIG)
    assert kube.get(f"/apis/{group}/v1/namespaces/{ns}/parts/big").status_code == 404


@pytest.mark.parametrize(
    ("method", "ctype", "body"),
    [
        ("PUT", "application/json", None),
        ("PATCH", "application/merge-patch+json", {"spec": {"size": 20}}),
        ("PATCH", "application/json-patch+json", [{"op": "replace", "path": "/spec/size", "value": 20}]),
        ("PATCH", "application/apply-patch+yaml", None),
    ],
    ids=["update", "merge", "json", "apply"],
)
def test_update_paths_refused(kube: Kube, ns: str, group: str, method: str, ctype: str, body: Any) -> None:
    path = f"/apis/{group}/v1/namespaces/{ns}/parts/keep"
    created = kube.post(f"/apis/{group}/v1/namespaces/{ns}/parts", part(group, "keep"))
    assert created.status_code == 201, created.text
    params = None
    if method == "PUT":
        body = created.json()
        body["spec"]["size"] = 20
    elif ctype == "application/apply-patch+yaml":
        body = json.dumps(part(group, "keep", 20))  # JSON is YAML
        params = {"fieldManager": "test", "force": "true"}
    r = kube.request(method, path, body, ctype=ctype, params=params)
    assert_refused(r, group, "keep", "spec.size", TOO_BIG)
    stored = kube.get(path).json()
    assert stored["spec"]["size"] == 4
    assert stored["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]


def test_strategic_patch_is_unsupported(kube: Kube, ns: str, group: str) -> None:
    path = f"/apis/{group}/v1/namespaces/{ns}/parts/keep"
    assert kube.post(f"/apis/{group}/v1/namespaces/{ns}/parts", part(group, "keep")).status_code == 201
    r = kube.patch(path, {"spec": {"size": 20}}, "application/strategic-merge-patch+json")
    assert r.status_code == 415, r.text
    assert r.json()["reason"] == "UnsupportedMediaType"
    assert kube.get(path).json()["spec"]["size"] == 4


@pytest.mark.parametrize("how", ["put", "merge", "json"])
def test_status_subresource_refused(kube: Kube, ns: str, group: str, how: str) -> None:
    path = f"/apis/{group}/v1/namespaces/{ns}/parts/st"
    created = kube.post(f"/apis/{group}/v1/namespaces/{ns}/parts", part(group, "st"))
    assert created.status_code == 201, created.text
    if how == "put":
        body = created.json() | {"status": {"count": -1}}
        r = kube.put(f"{path}/status", body)
    elif how == "merge":
        r = kube.patch(f"{path}/status", {"status": {"count": -1}}, "application/merge-patch+json")
    else:
        op = [{"op": "add", "path": "/status", "value": {"count": -1}}]
        r = kube.patch(f"{path}/status", op, "application/json-patch+json")
    # the status subresource validates `status` on its own: the real server names the field `count`
    # (the corpus case cr-status-invalid records it so)
    detail = "Invalid value: -1: count in body should be greater than or equal to 0"
    assert_refused(r, group, "st", "count", detail)
    assert "status" not in kube.get(path).json()


def test_defaults_applied_on_read_from_storage(kube: Kube, ns: str, group: str) -> None:
    base = f"/apis/{group}/v1/namespaces/{ns}/parts"
    created = kube.post(base, part(group, "old"))
    assert created.status_code == 201, created.text
    assert "mode" not in created.json()["spec"]
    rv = created.json()["metadata"]["resourceVersion"]
    crd = kube.get(f"{CRDS}/parts.{group}").json()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = _schema(mode_default=True)
    r = kube.put(f"{CRDS}/parts.{group}", crd)
    assert r.status_code == 200, r.text

    def got() -> Any:
        return kube.get(f"{base}/old").json()["spec"].get("mode")

    eventually(lambda: got() == "auto", 15, what="the new default on GET")
    obj = kube.get(f"{base}/old").json()
    assert obj["metadata"]["resourceVersion"] == rv  # shown, not written back
    assert [i["spec"].get("mode") for i in kube.get(base).json()["items"]] == ["auto"]
    with kube.http.stream(
        "GET", base, params={"watch": "1", "timeoutSeconds": "1", "resourceVersion": "0"}
    ) as w:
        events = [json.loads(line) for line in w.iter_lines() if line.strip()]
    assert [(e["type"], e["object"]["spec"].get("mode")) for e in events] == [("ADDED", "auto")]
    # a merge patch works on the defaulted object; the result is stored with the default
    r = kube.patch(f"{base}/old", {"spec": {"size": 5}}, "application/merge-patch+json")
    assert r.status_code == 200, r.text
    assert r.json()["spec"] == {"size": 5, "mode": "auto"}
