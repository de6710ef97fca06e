"""Field trees and the unknown/duplicate field walk, on the kinds' real type definitions."""

from __future__ import annotations

import json
from typing import Any

from runtime.apiserver.validation.duplicates import duplicate_fields
from runtime.apiserver.validation.fieldtree import builtin_tree, crd_tree, prune


def _prune(obj: dict[str, Any], tree: Any) -> list[str]:
    unknown: list[str] = []
    prune(obj, tree, "", unknown)
    return unknown


def test_builtin_walk_reports_in_document_order_and_drops() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"any": "key"}, "x": 1},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "i",
                    "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "a", "y": 2}}}],
                },
                {"name": "d", "image": "i", "resources": {"limits": {"cpu": "1"}}, "z": 3},
            ],
        },
        "bogus": True,
    }
    assert _prune(pod, builtin_tree("", "v1", "Pod")) == [
        "metadata.x",
        "spec.containers[0].env[0].valueFrom.fieldRef.y",
        "spec.containers[1].z",
        "bogus",
    ]
    assert "bogus" not in pod and "x" not in pod["metadata"] and "z" not in pod["spec"]["containers"][1]
    assert pod["spec"]["containers"][1]["resources"] == {"limits": {"cpu": "1"}}


def test_recursive_types_and_wrong_shapes_are_left_alone() -> None:
    crd = {
        "spec": {"versions": [{"schema": {"openAPIV3Schema": {"not": {"not": {"type": "object", "q": 1}}}}}]}
    }
    assert _prune(crd, builtin_tree("apiextensions.k8s.io", "v1", "CustomResourceDefinition")) == [
        "spec.versions[0].schema.openAPIV3Schema.not.not.q"
    ]
    odd = {"spec": "not an object", "metadata": ["nor", "this"]}
    assert _prune(odd, builtin_tree("apps", "v1", "Deployment")) == []


def test_crd_tree_embedded_preserved_and_maps() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "t": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": True,
                        "x-kubernetes-preserve-unknown-fields": True,
                    },
                    "free": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"k": {"type": "object", "properties": {}}},
                    },
                    "m": {
                        "type": "object",
                        "additionalProperties": {"type": "object", "properties": {"n": {"type": "integer"}}},
                    },
                    "empty": {"type": "object"},
                },
            }
        },
    }
    obj = {
        "apiVersion": "g/v1",
        "kind": "K",
        "metadata": {"name": "n", "nope": 1},
        "spec": {
            "t": {"apiVersion": "v1", "kind": "X", "metadata": {"name": "e", "bad": 1}, "anything": 1},
            "free": {"whatever": {"deep": 1}, "k": {"gone": 1}},
            "m": {"a": {"n": 1, "o": 2}},
            "empty": {"p": 1},
        },
    }
    assert sorted(_prune(obj, crd_tree(schema))) == [
        "metadata.nope",
        "spec.empty.p",
        "spec.free.k.gone",
        "spec.m.a.o",
        "spec.t.metadata.bad",
    ]
    assert obj["spec"]["t"]["anything"] == 1 and obj["spec"]["free"]["whatever"] == {"deep": 1}
    assert crd_tree(schema) is crd_tree(schema)  # compiled once per schema


def test_duplicate_fields_paths_and_fast_path() -> None:
    body = b'{"metadata":{"name":"a","name":"b"},"items":[{"k":1},{"k":1,"k":2}],"v":"x\\":y"}'
    assert duplicate_fields(body, json.loads(body)) == ["metadata.name", "items[1].k"]
    clean = b'{"metadata":{"name":"a"},"v":"has \\": inside"}'
    assert duplicate_fields(clean, json.loads(clean)) == []
    spaced = b'{"a" : 1, "a" : 2}'
    assert duplicate_fields(spaced, json.loads(spaced)) == ["a"]
