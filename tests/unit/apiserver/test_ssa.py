"""Server-side apply behaves as kube-apiserver's field manager does: ownership, pruning, conflicts
and force, keyed lists and sets, the status subresource. Update-operation managedFields:
test_managed_fields.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.apiserver.patch.apply import ApplyConflict, server_side_apply, update_managed_fields
from tests.unit.apiserver.fieldmgr_objects import CM, T1, T2, as_stored


def apply_cm(live: Any, applied: Any, manager: str, *, time: str, force: bool = False) -> Any:
    """A server-side apply of a ConfigMap (v1) by `manager` at `time`."""
    return server_side_apply(
        live, applied, manager=manager, force=force, kind="ConfigMap", api_version="v1", time=time
    )


def test_apply_create_owns_exactly_the_applied_fields() -> None:
    out = apply_cm(None, CM, "kubectl", time=T1)
    assert out["data"] == {"a": "1", "b": "2"}
    assert out["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:app": {}}}},
        }
    ]


def test_reapply_is_a_noop_and_removed_fields_are_pruned() -> None:
    live = as_stored(apply_cm(None, CM, "kubectl", time=T1))
    again = apply_cm(live, CM, "kubectl", time=T2)
    assert again == live  # same object, same managedFields time: the server can skip the write
    smaller = {**CM, "data": {"a": "1"}, "metadata": {"name": "c", "namespace": "default"}}
    out = apply_cm(live, smaller, "kubectl", time=T2)
    assert out["data"] == {"a": "1"}
    assert "labels" not in out["metadata"]
    assert out["metadata"]["uid"] == "u1" and out["metadata"]["resourceVersion"] == "5"
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_fields_owned_by_others_survive_pruning() -> None:
    live = as_stored(apply_cm(None, CM, "kubectl", time=T1))
    # Another writer (kubectl edit / patch) changes data.b: it takes ownership of it.
    edited = json.loads(json.dumps(live))
    edited["data"]["b"] = "edited"
    live = update_managed_fields(live, edited, manager="kubectl-edit", time=T2)
    assert [m["manager"] for m in live["metadata"]["managedFields"]] == ["kubectl", "kubectl-edit"]
    assert live["metadata"]["managedFields"][1]["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert live["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:data": {"f:a": {}},
        "f:metadata": {"f:labels": {"f:app": {}}},
    }
    out = apply_cm(live, {**CM, "data": {"a": "1"}}, "kubectl", time=T2)
    assert out["data"] == {"a": "1", "b": "edited"}


DEP = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "d", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "d"}},
        "template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
        },
    },
}


def test_apply_conflict_with_update_manager_and_force() -> None:
    created = as_stored(update_managed_fields(None, DEP, manager="kubectl-client-side-apply", time=T1))
    changed = json.loads(json.dumps(DEP))
    changed["spec"]["replicas"] = 3
    with pytest.raises(ApplyConflict) as exc:
        server_side_apply(
            created,
            changed,
            manager="kubectl",
            force=False,
            kind="Deployment",
            api_version="apps/v1",
            time=T2,
        )
    assert str(exc.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using '
        "apps/v1: .spec.replicas"
    )
    assert exc.value.conflicts == ['conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas']
    assert exc.value.causes == [
        {
            "type": "FieldManagerConflict",
            "field": ".spec.replicas",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
        }
    ]
    # Applying the same values is not a conflict: ownership is shared.
    shared = server_side_apply(
        created, DEP, manager="kubectl", force=False, kind="Deployment", api_version="apps/v1", time=T2
    )
    assert [m["manager"] for m in shared["metadata"]["managedFields"]] == [
        "kubectl",
        "kubectl-client-side-apply",
    ]
    forced = server_side_apply(
        created, changed, manager="kubectl", force=True, kind="Deployment", api_version="apps/v1", time=T2
    )
    assert forced["spec"]["replicas"] == 3
    owners = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert "f:replicas" in owners["kubectl"]["f:spec"]
    assert "f:replicas" not in owners["kubectl-client-side-apply"]["f:spec"]


def test_apply_merges_keyed_lists_and_multiple_conflicts_message() -> None:
    live = as_stored(
        server_side_apply(
            None, DEP, manager="a", force=False, kind="Deployment", api_version="apps/v1", time=T1
        )
    )
    side = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}},
    }
    out = server_side_apply(
        live, side, manager="b", force=False, kind="Deployment", api_version="apps/v1", time=T2
    )
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["c", "side"]
    b = next(m for m in out["metadata"]["managedFields"] if m["manager"] == "b")
    assert b["fieldsV1"] == {
        "f:spec": {
            "f:template": {
                "f:spec": {"f:containers": {'k:{"name":"side"}': {".": {}, "f:image": {}, "f:name": {}}}}
            }
        }
    }
    clash = json.loads(json.dumps(DEP))
    clash["spec"]["replicas"] = 2
    clash["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    with pytest.raises(ApplyConflict) as exc:
        server_side_apply(
            as_stored(out), clash, manager="b", force=False, kind="Deployment", api_version="apps/v1"
        )
    assert str(exc.value) == (
        'Apply failed with 2 conflicts: conflicts with "a":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="c"].image'
    )


def test_prune_removes_a_label_even_when_another_manager_owns_the_map() -> None:
    created = as_stored(update_managed_fields(None, {**CM, "data": {}}, manager="creator", time=T1))
    # creator owns metadata.labels (it created the map) and labels.app.
    assert created["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"] == {
        "f:labels": {".": {}, "f:app": {}}
    }
    mine = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "default", "labels": {"extra": "1"}},
    }
    live = as_stored(apply_cm(created, mine, "applier", time=T2))
    assert live["metadata"]["labels"] == {"app": "x", "extra": "1"}
    out = apply_cm(live, {**mine, "metadata": {"name": "c", "namespace": "default"}}, "applier", time=T2)
    assert out["metadata"]["labels"] == {"app": "x"}
    assert [m["manager"] for m in out["metadata"]["managedFields"]] == ["creator"]


def test_first_apply_to_an_untracked_object_creates_before_first_apply() -> None:
    live = as_stored(CM)  # no managedFields (e.g. they were reset with managedFields: [])
    out = apply_cm(live, {**CM, "data": {"b": "2"}}, "x", time=T2)
    assert out["data"] == {"a": "1", "b": "2"}
    owners = {m["manager"]: (m["operation"], m["fieldsV1"]) for m in out["metadata"]["managedFields"]}
    assert owners["before-first-apply"][0] == "Update"
    assert owners["before-first-apply"][1]["f:data"] == {".": {}, "f:a": {}, "f:b": {}}
    with pytest.raises(ApplyConflict, match=r'conflict with "before-first-apply" using v1: \.data\.a'):
        server_side_apply(
            as_stored(out),
            {**CM, "data": {"a": "9"}},
            manager="x",
            force=False,
            kind="ConfigMap",
            api_version="v1",
        )


def test_apply_sets_and_multi_key_lists() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "finalizers": ["a.io/x"]},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
    }
    out = server_side_apply(None, pod, manager="m", force=False, kind="Pod", api_version="v1", time=T1)
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert fields["f:metadata"] == {"f:finalizers": {'v:"a.io/x"': {}}}
    # listMapKeys containerPort+protocol, protocol defaulted to TCP in the key.
    assert fields["f:spec"]["f:containers"]['k:{"name":"c"}']["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}
    }
    other = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "finalizers": ["b.io/y"]},
    }
    merged = server_side_apply(
        as_stored(out), other, manager="n", force=False, kind="Pod", api_version="v1", time=T2
    )
    assert merged["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]  # sets merge, each owner keeps its item


def test_apply_on_status_subresource_owns_status_only() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i"}]},
    }
    live = as_stored(update_managed_fields(None, pod, manager="creator", time=T1))
    st = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    out = server_side_apply(
        live, st, manager="kubelet", force=False, kind="Pod", api_version="v1", subresource="status", time=T2
    )
    entry = next(m for m in out["metadata"]["managedFields"] if m["manager"] == "kubelet")
    assert entry["subresource"] == "status" and entry["operation"] == "Apply"
    assert entry["fieldsV1"] == {
        "f:status": {
            "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}},
            "f:phase": {},
        }
    }
    assert out["status"]["phase"] == "Running"
