"""Server-side apply (application/apply-patch+yaml) as kube-apiserver implements it: managedFields,
conflicts with other managers, force, pruning of fields no longer applied, no-op re-apply."""

from __future__ import annotations

import json
from typing import Any

from tests.kubeapi.clientversion import show_managed_fields
from tests.kubeapi.conftest import Kube, Kubectl

APPLY = "application/apply-patch+yaml"


def cm_yaml(**data: str) -> str:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: c", "data:"]
    lines += [f"  {k}: '{v}'" for k, v in data.items()]
    return "\n".join(lines) + "\n"


def apply(kube: Kube, ns: str, body: str, manager: str = "tester", force: bool = False) -> Any:
    params = {"fieldManager": manager}
    if force:
        params["force"] = "true"
    return kube.patch(f"/api/v1/namespaces/{ns}/configmaps/c", body, APPLY, params=params)


def test_apply_creates_and_records_managed_fields(kube: Kube, ns: str) -> None:
    r = apply(kube, ns, cm_yaml(a="1", b="2"))
    assert r.status_code == 201, r.text
    obj = r.json()
    assert obj["data"] == {"a": "1", "b": "2"}
    [mf] = obj["metadata"]["managedFields"]
    assert (mf["manager"], mf["operation"], mf["apiVersion"], mf["fieldsType"]) == (
        "tester",
        "Apply",
        "v1",
        "FieldsV1",
    )
    assert mf["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    # Re-applying the same configuration changes nothing, not even the resourceVersion.
    again = apply(kube, ns, cm_yaml(a="1", b="2"))
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    # A field dropped from the configuration is removed.
    r = apply(kube, ns, cm_yaml(a="1"))
    assert r.json()["data"] == {"a": "1"}


def test_conflict_with_another_manager_and_force(kube: Kube, ns: str) -> None:
    r = kube.post(
        f"/api/v1/namespaces/{ns}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
        params={"fieldManager": "creator"},
    )
    assert r.status_code == 201, r.text
    r = apply(kube, ns, cm_yaml(a="2"))
    assert r.status_code == 409, r.text
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "creator" using v1: .data.a'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "creator" using v1', "field": ".data.a"}
    ]
    # Applying the value the other manager set is not a conflict (shared ownership).
    assert apply(kube, ns, cm_yaml(a="1")).status_code == 200
    r = apply(kube, ns, cm_yaml(a="2"), force=True)
    assert r.status_code == 200, r.text
    owners = {m["manager"]: m.get("fieldsV1") for m in r.json()["metadata"]["managedFields"]}
    assert owners["tester"] == {"f:data": {"f:a": {}}}
    assert "f:a" not in owners.get("creator", {}).get("f:data", {})  # the conflicting field changed hands


def test_update_by_other_writer_keeps_field_on_prune(kube: Kube, ns: str) -> None:
    apply(kube, ns, cm_yaml(a="1", b="2"))
    r = kube.patch(
        f"/api/v1/namespaces/{ns}/configmaps/c",
        {"data": {"b": "edited"}},
        "application/merge-patch+json",
        params={"fieldManager": "editor"},
    )
    assert r.status_code == 200, r.text
    managers = [(m["manager"], m["operation"]) for m in r.json()["metadata"]["managedFields"]]
    assert managers == [("tester", "Apply"), ("editor", "Update")]
    r = apply(kube, ns, cm_yaml(a="1"))
    assert r.json()["data"] == {"a": "1", "b": "edited"}  # b is editor's now: not pruned


def test_apply_requires_field_manager(kube: Kube, ns: str) -> None:
    """kube-apiserver 1.28 answers 422 Invalid on PatchOptions (kube-validation pod-apply-no-fieldmanager)."""
    r = kube.patch(f"/api/v1/namespaces/{ns}/configmaps/c", cm_yaml(a="1"), APPLY)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    assert body["details"] == {
        "group": "meta.k8s.io",
        "kind": "PatchOptions",
        "causes": [
            {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
             "field": "fieldManager"}
        ],
    }  # fmt: skip


def test_kubectl_server_side_apply_conflict(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=cm_yaml(a="1"))
    obj = json.loads(kubectl("-n", ns, "get", "cm", "c", "-o", "json", *show_managed_fields(kubectl)).stdout)
    assert [m["manager"] for m in obj["metadata"]["managedFields"]] == ["kubectl"]
    other = ("-n", ns, "apply", "--server-side", "--field-manager=other")
    res = kubectl(*other, "-f", "-", input=cm_yaml(a="2"), check=False)
    assert res.returncode != 0
    assert 'conflict with "kubectl": .data.a' in res.stderr
    kubectl(*other, "--force-conflicts", "-f", "-", input=cm_yaml(a="2"))
    assert kubectl.json("-n", ns, "get", "cm", "c")["data"] == {"a": "2"}


async def test_lightkube_apply(apiserver_session: Any, ns: str) -> None:
    """lightkube's apply() (the access layer's create-or-update) against the server."""
    from lightkube import AsyncClient, KubeConfig
    from lightkube.core.exceptions import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    client = AsyncClient(KubeConfig.from_file(str(apiserver_session.kubeconfig)), namespace=ns)
    try:
        obj = ConfigMap(metadata=ObjectMeta(name="lk", namespace=ns), data={"a": "1"})
        first = await client.apply(obj, field_manager="kedge")
        again = await client.apply(obj, field_manager="kedge")
        assert first.metadata is not None and again.metadata is not None
        assert again.metadata.resourceVersion == first.metadata.resourceVersion
        assert [m.manager for m in again.metadata.managedFields or []] == ["kedge"]
        other = ConfigMap(metadata=ObjectMeta(name="lk", namespace=ns), data={"a": "2"})
        try:
            await client.apply(other, field_manager="someone-else")
            raise AssertionError("expected a 409 conflict")
        except ApiError as exc:
            assert exc.status.code == 409 and exc.status.reason == "Conflict"
        forced = await client.apply(other, field_manager="someone-else", force=True)
        assert forced.data == {"a": "2"}
    finally:
        await client.close()
