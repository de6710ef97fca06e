"""Strategic merge patch gives the objects kube-apiserver gives.

The first test replays every node and pod status patch a real edgecore sent in the recorded KubeEdge
session and compares the result with the object the real apiserver answered with (the recording holds
both). The others pin the documented directive and ordering rules of apimachinery's strategicpatch.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from runtime.apiserver.patch.jsonpatch import PatchError
from runtime.apiserver.patch.strategic import apply_strategic_merge_patch

CAPTURE = Path(__file__).parent.parent / "protocol" / "data" / "capture.jsonl"


def _replays() -> list[tuple[int, str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(seq, kind, object before, patch, object the real server returned) for every status patch."""
    frames = [json.loads(line) for line in CAPTURE.read_text().splitlines() if line.strip()]
    latest: dict[str, dict[str, Any]] = {}
    pending: dict[str, tuple[int, str, dict[str, Any], dict[str, Any]]] = {}
    out = []
    for f in frames:
        msg, route = f["msg"], f["msg"]["route"]
        parts = route.get("resource", "").split("/")
        if len(parts) != 3:
            continue
        name = parts[1].removesuffix("patch") + "/" + parts[2]  # node/x and nodepatch/x are one object
        content = msg["content"]
        if f["dir"] == "cloud->edge" and isinstance(content, dict):
            obj = content.get("Object") or content
            if not isinstance(obj, dict) or (obj.get("metadata") or {}).get("name") != parts[2]:
                continue
            parent = msg["header"].get("parent_msg_id")
            if parent in pending:
                seq, kind, before, patch = pending.pop(parent)
                out.append((seq, kind, before, patch, obj))
            latest[name] = obj
        elif f["dir"] == "edge->cloud" and route.get("operation") == "patch":
            kind = "Node" if "/nodepatch/" in route["resource"] else "Pod"
            pending[msg["header"]["msg_id"]] = (f["seq"], kind, latest[name], json.loads(content))
    return out


REPLAYS = _replays()


def test_capture_has_node_and_pod_patches() -> None:
    kinds = [r[1] for r in REPLAYS]
    assert kinds.count("Node") >= 3 and kinds.count("Pod") >= 10
    # The recording uses $setElementOrder and null deletes, the directives this test must cover.
    assert any("$setElementOrder/conditions" in json.dumps(r[3]) for r in REPLAYS)
    assert any('"message": null' in json.dumps(r[3]) for r in REPLAYS)


@pytest.mark.parametrize("replay", REPLAYS, ids=[f"seq{r[0]}-{r[1]}" for r in REPLAYS])
def test_recorded_edgecore_patch_matches_real_apiserver(replay: tuple[Any, ...]) -> None:
    _seq, kind, before, patch, real = replay
    got = apply_strategic_merge_patch(before, patch, kind, "v1")
    # The recorded server (Kubernetes 1.28) predates ContainerStatus.volumeMounts (1.30) and dropped
    # that unknown field while decoding; a 1.32 server keeps it. Everything else must be identical,
    # list order included.
    for cs in got["status"].get("containerStatuses") or []:
        cs.pop("volumeMounts", None)
    assert got["status"] == real["status"]
    assert got["spec"] == real["spec"]


POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "p",
        "namespace": "default",
        "labels": {"app": "a", "tier": "t"},
        "finalizers": ["a.io/one", "a.io/two"],
    },
    "spec": {
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
            },
            {"name": "side", "image": "side:1"},
        ],
        "tolerations": [{"key": "x", "operator": "Exists"}],
        "volumes": [{"name": "data", "emptyDir": {}}],
    },
}


def smp(patch: dict[str, Any], obj: dict[str, Any] | None = None, kind: str = "Pod") -> dict[str, Any]:
    return apply_strategic_merge_patch(obj or POD, patch, kind, "v1")


def test_containers_merge_by_name_and_new_items_go_first() -> None:
    out = smp(
        {"spec": {"containers": [{"name": "side", "image": "side:2"}, {"name": "new", "image": "n:1"}]}}
    )
    # Known items keep the live order; an item the server has never seen goes before server-only ones.
    assert [c["name"] for c in out["spec"]["containers"]] == ["app", "side", "new"]
    assert out["spec"]["containers"][1] == {"name": "side", "image": "side:2"}
    assert out["spec"]["containers"][0] == POD["spec"]["containers"][0]
    out = smp({"spec": {"containers": [{"name": "new", "image": "n:1"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["new", "app", "side"]
    assert POD["spec"]["containers"][1]["image"] == "side:1"  # input untouched


def test_set_element_order_keeps_requested_order() -> None:
    out = smp(
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "new"}, {"name": "side"}],
                "containers": [{"name": "new", "image": "n:1"}],
            }
        }
    )
    assert [c["name"] for c in out["spec"]["containers"]] == ["app", "new", "side"]
    assert "$setElementOrder/containers" not in out["spec"]


def test_nested_env_merge_and_null_deletes() -> None:
    out = smp(
        {
            "metadata": {"labels": {"tier": None}},
            "spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "3"}], "image": None}]},
        }
    )
    assert out["metadata"]["labels"] == {"app": "a"}
    app = next(c for c in out["spec"]["containers"] if c["name"] == "app")
    assert "image" not in app
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]


def test_patch_delete_and_replace_directives() -> None:
    out = smp({"spec": {"containers": [{"name": "side", "$patch": "delete"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]
    out = smp({"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "only", "image": "o:1"}]
    out = smp({"metadata": {"labels": {"$patch": "replace", "new": "1"}}})
    assert out["metadata"]["labels"] == {"new": "1"}
    out = smp({"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in out["metadata"]  # an empty map decodes to nothing in ObjectMeta
    with pytest.raises(PatchError, match="unknown patch type: bogus in map") as exc:
        smp({"metadata": {"labels": {"$patch": "bogus"}}})
    assert exc.value.code == 500


def test_retain_keys_switches_volume_source() -> None:
    """What `kubectl apply` sends when a volume changes from emptyDir to hostPath."""
    out = smp(
        {
            "spec": {
                "volumes": [{"$retainKeys": ["hostPath", "name"], "name": "data", "hostPath": {"path": "/d"}}]
            }
        }
    )
    assert out["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/d"}}]
    with pytest.raises(PatchError, match="invalid patch format of retainKeys") as exc:
        smp({"spec": {"volumes": [{"$retainKeys": ["name"], "name": "data", "hostPath": {"path": "/d"}}]}})
    assert exc.value.code == 400


def test_primitive_merge_list_finalizers() -> None:
    out = smp({"metadata": {"finalizers": ["a.io/three"]}})
    assert out["metadata"]["finalizers"] == ["a.io/three", "a.io/one", "a.io/two"]
    out = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/one"]}})
    assert out["metadata"]["finalizers"] == ["a.io/two"]
    out = smp({"metadata": {"$setElementOrder/finalizers": ["a.io/two", "a.io/one"]}})
    assert out["metadata"]["finalizers"] == ["a.io/two", "a.io/one"]


def test_atomic_lists_are_replaced() -> None:
    # PodSpec.tolerations has no patch strategy: the list is replaced, not merged.
    out = smp({"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}})
    assert out["spec"]["tolerations"] == [{"key": "y", "operator": "Exists"}]
    node = {
        "metadata": {"name": "n"},
        "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": "n"},
            ],
            "images": [{"names": ["a"]}],
        },
    }
    out = smp(
        {
            "spec": {"taints": [{"key": "b", "effect": "NoExecute"}]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
                "images": [{"names": ["b"]}],
            },
        },
        node,
        "Node",
    )
    assert out["spec"]["taints"] == [{"key": "b", "effect": "NoExecute"}]  # taints: atomic
    assert out["status"]["addresses"] == [
        {"type": "InternalIP", "address": "10.0.0.2"},
        {"type": "Hostname", "address": "n"},
    ]  # merged by type
    assert out["status"]["images"] == [{"names": ["b"]}]


def test_deployment_template_uses_pod_merge_keys() -> None:
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "c:1"}]}}},
    }
    out = apply_strategic_merge_patch(
        dep,
        {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "c:2"}]}}}},
        "Deployment",
        "apps/v1",
    )
    assert out["spec"] == {
        "replicas": 3,
        "template": {"spec": {"containers": [{"name": "c", "image": "c:2"}]}},
    }


def test_custom_resources_are_refused_with_415() -> None:
    with pytest.raises(PatchError) as exc:
        apply_strategic_merge_patch(
            {"metadata": {"name": "d"}}, {"spec": {}}, "Device", "devices.kubeedge.io/v1beta1"
        )
    assert exc.value.code == 415
    assert "application/merge-patch+json" in exc.value.message


def test_new_subtree_loses_directives_and_nulls() -> None:
    out = smp(
        {
            "status": {
                "$setElementOrder/conditions": [{"type": "Ready"}],
                "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None, "reason": None}],
            }
        }
    )
    # As after decoding into the Go struct: directives gone, metav1.Time stays null, other nulls vanish.
    assert out["status"] == {"conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None}]}
    assert copy.deepcopy(POD) == POD
