"""managedFields of Update operations as kube-apiserver's field manager records them: a create rebuilt
from the recorded `kubectl apply` (client-side) pods, FieldsV1 encoding, status-subresource updates,
untracked objects. Server-side apply: test_ssa.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.apiserver.admission.create import default_object
from runtime.apiserver.patch.apply import update_managed_fields
from runtime.apiserver.patch.fieldsets import from_fields_v1, path_string, to_fields_v1
from tests.fixtures.edge import capture
from tests.unit.apiserver.fieldmgr_objects import CM, T1, T2, as_stored


def _recorded_pods() -> list[dict[str, Any]]:
    return [
        f["msg"]["content"]
        for f in capture()
        if f["dir"] == "cloud->edge"
        and f["msg"]["route"]["operation"] == "insert"
        and "/pod/" in f["msg"]["route"]["resource"]
    ]


@pytest.mark.parametrize("real", _recorded_pods(), ids=lambda p: p["metadata"]["name"])
def test_create_managed_fields_match_real_server(real: dict[str, Any]) -> None:
    last_applied = real["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    sent = json.loads(last_applied)  # what `kubectl apply` (client-side) POSTs ...
    sent["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": last_applied}
    decoded = default_object("pods", sent)  # ... after the server's decode-time defaulting
    out = update_managed_fields(None, decoded, manager="kubectl-client-side-apply", time=T1)
    [entry] = out["metadata"]["managedFields"]
    [want] = real["metadata"]["managedFields"]
    assert entry == {**want, "time": T1}


def test_fields_v1_round_trip_and_paths() -> None:
    fields = {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}},
        "f:finalizers": {'v:"a"': {}},
    }
    paths = from_fields_v1(fields)
    assert to_fields_v1(paths) == fields
    assert sorted(path_string(p) for p in paths) == [
        '.finalizers[="a"]',
        ".metadata.labels",
        ".metadata.labels.app",
        '.spec.ports[port=80,protocol="TCP"]',
        '.spec.ports[port=80,protocol="TCP"].port',
    ]


def test_update_on_status_subresource_owns_only_status() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Pending"},
    }
    live = as_stored(update_managed_fields(None, pod, manager="kubectl-create", time=T1))
    assert "f:status" not in live["metadata"]["managedFields"][0]["fieldsV1"]
    new = json.loads(json.dumps(live))
    new["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    out = update_managed_fields(live, new, manager="edgecore", subresource="status", time=T2)
    entry = out["metadata"]["managedFields"][1]
    assert entry == {
        "manager": "edgecore",
        "operation": "Update",
        "apiVersion": "v1",
        "time": T2,
        "fieldsType": "FieldsV1",
        "subresource": "status",
        "fieldsV1": {
            "f:status": {
                "f:conditions": {".": {}, 'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}},
                "f:phase": {},
            }
        },
    }
    # An update that changes nothing leaves managedFields (and their times) alone.
    assert (
        update_managed_fields(
            out,
            json.loads(json.dumps(out)),
            manager="edgecore",
            subresource="status",
            time="2030-01-01T00:00:00Z",
        )
        == out
    )


def test_updates_to_untracked_objects_stay_untracked() -> None:
    live = as_stored(CM)  # e.g. managedFields were reset with managedFields: []
    edited = json.loads(json.dumps(live))
    edited["data"]["a"] = "changed"
    out = update_managed_fields(live, edited, manager="kubectl-edit", time=T2)
    assert "managedFields" not in out["metadata"] and out["data"]["a"] == "changed"


def test_deployment_strategy_switch_with_retain_keys() -> None:
    """What client-side `kubectl apply` sends when a Deployment moves to the Recreate strategy."""
    from runtime.apiserver.patch.strategic import apply_strategic_merge_patch

    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            }
        },
    }
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}}
    out = apply_strategic_merge_patch(dep, patch, "Deployment", "apps/v1")
    assert out["spec"]["strategy"] == {"type": "Recreate"}
