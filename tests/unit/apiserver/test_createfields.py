"""The one-walk managedFields of a create (createfields.py) equal the general compare-filter-encode path."""

from __future__ import annotations

import random
from typing import Any

import pytest

from runtime.apiserver.admission.create import default_object
from runtime.apiserver.patch.apply import _filter, _skeleton, update_managed_fields
from runtime.apiserver.patch.createfields import create_fields_v1
from runtime.apiserver.patch.fieldsets import compare, root_struct, to_fields_v1
from runtime.apiserver.patch.managers import without_managed_fields

T = "2026-11-28T10:00:00Z"


def _general(obj: dict[str, Any]) -> dict[str, Any]:
    added, modified, _ = compare(
        _skeleton(obj), without_managed_fields(obj), root_struct(str(obj.get("kind", "")))
    )
    return to_fields_v1(_filter(added | modified, "", True))


def _container(rnd: random.Random, i: int) -> dict[str, Any]:
    c: dict[str, Any] = {"name": f"c{i % 2}", "image": rnd.choice(["nginx", "nginx:1.25", "a/b@sha256:0"])}
    if rnd.random() < 0.6:
        c["resources"] = {"requests": {"cpu": "10m"}, "limits": {"memory": rnd.choice(["16Mi", "1Gi"])}}
    if rnd.random() < 0.5:  # duplicate ports and names on purpose: list keys collide
        n = rnd.randint(1, 3)
        c["ports"] = [{"containerPort": 80 + rnd.randint(0, 1), "name": "p"} for _ in range(n)]
    if rnd.random() < 0.3:
        c["env"] = [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    if rnd.random() < 0.2:
        c["args"] = ["a", "b"]
    if rnd.random() < 0.2:
        c["securityContext"] = {}
    return c


def _objects() -> list[dict[str, Any]]:
    rnd = random.Random(4)
    out: list[dict[str, Any]] = []
    for i in range(200):
        spec: dict[str, Any] = {"containers": [_container(rnd, j) for j in range(rnd.randint(0, 3))]}
        if rnd.random() < 0.3:
            spec["initContainers"] = [_container(rnd, 9)]
        if rnd.random() < 0.3:
            spec["volumes"] = [{"name": "v", "configMap": {"name": "x"}}, {"name": "e", "emptyDir": {}}]
        if rnd.random() < 0.2:
            spec["nodeSelector"] = {"a": "b"}
        if rnd.random() < 0.2:
            spec["tolerations"] = [{"key": "k", "operator": "Exists"}]
        if rnd.random() < 0.1:
            spec["containers"] = None
        if rnd.random() < 0.1:
            del spec["containers"]
        meta: dict[str, Any] = {"name": f"p{i}", "namespace": "ns", "uid": "u", "resourceVersion": "5"}
        if rnd.random() < 0.5:
            meta["labels"] = {"app": "x"}
        if rnd.random() < 0.2:
            meta["finalizers"] = ["a", "b", "a"]
        if rnd.random() < 0.2:
            meta["ownerReferences"] = [{"uid": "1", "name": "rs", "kind": "ReplicaSet", "apiVersion": "v1"}]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
        if rnd.random() < 0.3:
            pod["status"] = {"phase": "Running"}
        out.append(default_object("pods", pod) if rnd.random() < 0.7 else pod)
    out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})  # owns nothing
    out.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "m"}, "spec": "not a map"})
    out.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"a": "b"}},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": []}}},
        }
    )
    return out


@pytest.mark.parametrize("obj", _objects())
def test_create_fields_equal_general_path(obj: dict[str, Any]) -> None:
    assert create_fields_v1(_skeleton(obj), obj, root_struct(str(obj.get("kind", "")))) == _general(obj)


def test_create_entry_shape_and_untracked_when_nothing_owned() -> None:
    pod = default_object(
        "pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    )
    out = update_managed_fields(None, pod, manager="m", time=T)
    (entry,) = out["metadata"]["managedFields"]
    assert list(entry) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    assert entry["fieldsV1"] == _general(pod)
    assert "managedFields" not in pod["metadata"]  # the input is not changed
    bare = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": None}}
    assert "managedFields" not in update_managed_fields(None, bare, manager="m", time=T)["metadata"]
