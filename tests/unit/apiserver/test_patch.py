"""JSON patch and merge patch give the objects and the errors kube-apiserver gives."""

from __future__ import annotations

import pytest

from runtime.apiserver.patch.jsonpatch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    create_merge_patch,
)

CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "default", "labels": {"a": "1", "b": "2"}},
    "data": {"k": "v"},
}


def test_json_patch_ops_and_input_untouched() -> None:
    out = apply_json_patch(
        CM,
        [
            {"op": "add", "path": "/metadata/labels/c", "value": "3"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "replace", "path": "/data/k", "value": "w"},
            {"op": "test", "path": "/data/k", "value": "w"},
            {"op": "copy", "from": "/data/k", "path": "/data/k2"},
            {"op": "move", "from": "/data/k2", "path": "/data/k3"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "y"},
            {"op": "add", "path": "/metadata/finalizers/0", "value": "w"},
        ],
    )
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["data"] == {"k": "w", "k3": "w"}
    assert out["metadata"]["finalizers"] == ["w", "x", "y"]
    assert CM["metadata"]["labels"] == {"a": "1", "b": "2"}  # deep copy, caller's object untouched


@pytest.mark.parametrize(
    ("ops", "message", "code"),
    [
        (
            [{"op": "remove", "path": "/data/zz"}],
            'remove operation does not apply: doc is missing path: "/data/zz": missing value',
            422,
        ),
        (
            [{"op": "replace", "path": "/spec", "value": 1}],
            "replace operation does not apply: doc is missing key: /spec: missing value",
            422,
        ),
        (
            [{"op": "test", "path": "/data/k", "value": "nope"}],
            "testing value /data/k failed: test failed",
            422,
        ),
        (
            [{"op": "add", "path": "/a/b", "value": 1}],
            'add operation does not apply: doc is missing path: "/a/b": missing value',
            422,
        ),
        ([{"op": "frob", "path": "/a"}], "Unexpected kind: frob", 422),
        ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400),
    ],
)
def test_json_patch_errors(ops: object, message: str, code: int) -> None:
    with pytest.raises(PatchError) as exc:
        apply_json_patch(CM, ops)  # type: ignore[arg-type]
    assert exc.value.message == message
    assert exc.value.code == code


def test_merge_patch_rfc7386() -> None:
    out = apply_merge_patch(
        CM, {"metadata": {"labels": {"a": None, "c": "3"}, "annotations": {"x": "y"}}, "data": None}
    )
    assert out == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "c",
            "namespace": "default",
            "labels": {"b": "2", "c": "3"},
            "annotations": {"x": "y"},
        },
    }
    # Lists are replaced wholesale; a null for a missing key is a no-op.
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    assert apply_merge_patch(pod, {"spec": {"containers": [{"name": "c"}], "missing": None}}) == {
        "spec": {"containers": [{"name": "c"}]}
    }
    with pytest.raises(PatchError) as exc:
        apply_merge_patch(CM, ["x"])  # type: ignore[arg-type]
    assert exc.value.code == 400


def test_create_merge_patch_round_trips() -> None:
    new = apply_merge_patch(CM, {"metadata": {"labels": {"a": None}}, "data": {"k": "z"}})
    diff = create_merge_patch(CM, new)
    assert diff == {"metadata": {"labels": {"a": None}}, "data": {"k": "z"}}
    assert apply_merge_patch(CM, diff) == new
    assert create_merge_patch(CM, CM) == {}
