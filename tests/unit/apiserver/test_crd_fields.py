"""Field ownership of custom resources follows their CRD's schema, as structured-merge-diff types
them: list-type map lists keyed, set lists by value, other lists atomic, `x-kubernetes-map-type:
atomic` objects one leaf, metadata the built-in ObjectMeta; server-side apply merges by those types."""

from __future__ import annotations

from typing import Any

from runtime.apiserver.patch.apply import server_side_apply, update_managed_fields

T1, T2 = "2026-12-07T10:00:00Z", "2026-12-07T10:01:00Z"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "ports": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    },
                },
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "plain": {"type": "array", "items": {"type": "string"}},
                "ref": {
                    "type": "object",
                    "x-kubernetes-map-type": "atomic",
                    "properties": {"name": {"type": "string"}},
                },
            },
        }
    },
}


def _cr(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "w", "namespace": "d"}, "spec": spec}


def test_create_owns_by_the_schema_types() -> None:
    new = _cr({"ports": [{"name": "http", "port": 80}], "tags": ["a"], "plain": ["x"], "ref": {"name": "r"}})
    new["metadata"]["finalizers"] = ["x.io/f"]
    out = update_managed_fields(None, new, manager="m", time=T1, typed=False, schema=SCHEMA)
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:metadata": {"f:finalizers": {".": {}, 'v:"x.io/f"': {}}},
        "f:spec": {
            ".": {},
            "f:plain": {},
            "f:ports": {".": {}, 'k:{"name":"http"}': {".": {}, "f:name": {}, "f:port": {}}},
            "f:ref": {},
            "f:tags": {".": {}, 'v:"a"': {}},
        },
    }


def test_apply_merges_a_map_list_item_by_item() -> None:
    one = server_side_apply(
        None, _cr({"ports": [{"name": "a", "port": 1}]}), manager="one", force=False, kind="W",
        api_version="x.io/v1", time=T1, schema=SCHEMA,
    )  # fmt: skip
    both = server_side_apply(
        one, _cr({"ports": [{"name": "b", "port": 2}]}), manager="two", force=False, kind="W",
        api_version="x.io/v1", time=T2, schema=SCHEMA,
    )  # fmt: skip
    assert both["spec"]["ports"] == [{"name": "a", "port": 1}, {"name": "b", "port": 2}]
    owners = {m["manager"]: m["fieldsV1"]["f:spec"]["f:ports"] for m in both["metadata"]["managedFields"]}
    assert set(owners["one"]) == {'k:{"name":"a"}'} and set(owners["two"]) == {'k:{"name":"b"}'}
