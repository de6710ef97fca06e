"""Answers byte for byte as kube-apiserver writes them: clients compare error text exactly.

The real server's JSON serializer (json.Encoder) writes metav1.Status in its struct's field order —
kind, apiVersion, metadata, status, message, reason, details, code — and a newline after every object
it encodes (objects, lists, tables, discovery, Status); /version is written raw, without one; a watch
is one such encoded event per line.
"""

from __future__ import annotations

import json
from typing import Any

from tests.kubeapi.conftest import Kube, configmap

STATUS_ORDER = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


def keys_in_order(raw: bytes) -> list[str]:
    pairs: list[tuple[str, Any]] = json.loads(raw, object_pairs_hook=lambda p: p)  # type: ignore[arg-type]
    return [k for k, _ in pairs]


def test_not_found_status_bytes(kube: Kube, ns: str) -> None:
    r = kube.get(f"/api/v1/namespaces/{ns}/configmaps/missing")
    assert r.status_code == 404
    assert r.content == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"missing\\" not found","reason":"NotFound",'
        b'"details":{"name":"missing","kind":"configmaps"},"code":404}\n'
    )


def test_conflict_and_invalid_status_field_order(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    assert kube.post(path, configmap("dup")).status_code == 201
    conflict = kube.post(path, configmap("dup"))
    assert conflict.status_code == 409
    assert keys_in_order(conflict.content) == STATUS_ORDER and conflict.content.endswith(b"}\n")
    invalid = kube.post(path, configmap("Bad_Name"))
    assert invalid.status_code == 422
    assert keys_in_order(invalid.content) == STATUS_ORDER and invalid.content.endswith(b"}\n")
    gone = kube.get("/api/v1/namespaces/x/nothings")
    assert gone.status_code == 404 and gone.content.endswith(b"}\n")


def test_objects_lists_tables_discovery_end_with_newline(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    created = kube.post(path, configmap("one", {"a": "b"}))
    assert created.status_code == 201 and created.content.endswith(b"}\n")
    assert created.content.count(b"\n") == 1
    for r in (
        kube.get(f"{path}/one"),
        kube.get(path),
        kube.get(path, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}),
        kube.get("/api/v1"),
        kube.get("/apis"),
        kube.delete(f"{path}/one"),
    ):
        assert r.status_code == 200, r.text
        assert r.content.endswith(b"}\n") and r.content.count(b"\n") == 1, r.content[-80:]
    version = kube.get("/version")
    assert version.status_code == 200 and not version.content.endswith(b"\n")


def test_watch_is_one_event_per_line(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    assert kube.post(path, configmap("w1")).status_code == 201
    assert kube.post(path, configmap("w2")).status_code == 201
    r = kube.get(path, params={"watch": "1", "timeoutSeconds": "1"})
    assert r.status_code == 200
    lines = r.content.split(b"\n")
    assert lines[-1] == b"" and all(lines[:-1])
    events = [json.loads(line) for line in lines[:-1]]
    assert [e["object"]["metadata"]["name"] for e in events] == ["w1", "w2"]


def test_objects_in_go_struct_field_order(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    body = {
        "data": {"k": "v"},
        "metadata": {
            "finalizers": ["example.com/hold"],
            "annotations": {"a": "b"},
            "labels": {"l": "m"},
            "name": "o",
        },
        "apiVersion": "v1",
        "kind": "ConfigMap",
    }
    created = kube.post(path, body)
    assert created.status_code == 201, created.text
    for raw in (created.content, kube.get(f"{path}/o").content):
        assert keys_in_order(raw) == ["kind", "apiVersion", "metadata", "data"]
        meta = json.loads(raw)["metadata"]
        assert list(meta) == [
            "name", "namespace", "uid", "resourceVersion", "creationTimestamp",
            "labels", "annotations", "finalizers", "managedFields",
        ]  # fmt: skip
    # held by its finalizer: the DELETE answers the object itself, in the same order
    held = kube.delete(f"{path}/o")
    assert held.status_code == 200 and keys_in_order(held.content) == [
        "kind",
        "apiVersion",
        "metadata",
        "data",
    ]
    r = kube.patch(f"{path}/o", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert r.status_code == 200, r.text
    pod = {
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        "metadata": {"name": "p"},
        "apiVersion": "v1",
        "kind": "Pod",
    }
    created = kube.post(f"/api/v1/namespaces/{ns}/pods", pod)
    assert created.status_code == 201, created.text
    assert keys_in_order(created.content) == ["kind", "apiVersion", "metadata", "spec", "status"]
