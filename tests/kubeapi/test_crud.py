"""CRUD semantics every Kubernetes client relies on (status codes, Status bodies, metadata)."""

from __future__ import annotations

import uuid

from tests.kubeapi.conftest import CLUSTER_MADE, UNSCHEDULED, Kube, configmap, pod


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def test_initial_namespaces_exist(kube: Kube) -> None:
    names = {i["metadata"]["name"] for i in kube.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_create_sets_server_metadata_and_get_returns_it(kube: Kube, ns: str) -> None:
    r = kube.post(cm_path(ns), configmap("a", {"k": "v"}))
    assert r.status_code == 201, r.text
    created = r.json()
    meta = created["metadata"]
    assert meta["namespace"] == ns and meta["uid"] and meta["resourceVersion"]
    assert meta["creationTimestamp"].endswith("Z")
    got = kube.get(cm_path(ns, "a")).json()
    assert got["metadata"]["uid"] == meta["uid"]
    assert got["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert got["data"] == {"k": "v"}


def test_create_existing_is_409_already_exists(kube: Kube, ns: str) -> None:
    assert kube.post(cm_path(ns), configmap("a")).status_code == 201
    r = kube.post(cm_path(ns), configmap("a"))
    assert r.status_code == 409
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["reason"] == "AlreadyExists" and body["code"] == 409
    assert body["message"] == 'configmaps "a" already exists'
    assert body["details"] == {"name": "a", "kind": "configmaps"}


def test_get_missing_is_404_not_found(kube: Kube, ns: str) -> None:
    r = kube.get(cm_path(ns, "nope"))
    assert r.status_code == 404
    body = r.json()
    assert body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "configmaps"}


def test_group_resource_not_found_message_is_qualified(kube: Kube, ns: str) -> None:
    r = kube.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nope")
    assert r.status_code == 404
    assert r.json()["message"] == 'deployments.apps "nope" not found'
    assert r.json()["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_update_with_stale_resource_version_is_409_conflict(kube: Kube, ns: str) -> None:
    first = kube.post(cm_path(ns), configmap("a", {"n": "1"})).json()
    second = dict(first, data={"n": "2"})
    r = kube.put(cm_path(ns, "a"), second)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    stale = dict(first, data={"n": "3"})
    r = kube.put(cm_path(ns, "a"), stale)
    assert r.status_code == 409
    body = r.json()
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert kube.get(cm_path(ns, "a")).json()["data"] == {"n": "2"}


def test_update_missing_is_404_and_name_mismatch_is_400(kube: Kube, ns: str) -> None:
    assert kube.put(cm_path(ns, "x"), configmap("x")).status_code == 404
    kube.post(cm_path(ns), configmap("x"))
    r = kube.put(cm_path(ns, "x"), configmap("y"))
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"


def test_noop_update_keeps_resource_version(kube: Kube, ns: str) -> None:
    created = kube.post(cm_path(ns), configmap("a", {"k": "v"})).json()
    r = kube.put(cm_path(ns, "a"), created)
    assert r.status_code == 200
    assert r.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generate_name(kube: Kube, ns: str) -> None:
    body = configmap("")
    body["metadata"] = {"generateName": "gen-"}
    r = kube.post(cm_path(ns), body)
    assert r.status_code == 201, r.text
    name = r.json()["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5


def test_missing_name_is_422(kube: Kube, ns: str) -> None:
    body = configmap("")
    body["metadata"] = {}
    r = kube.post(cm_path(ns), body)
    assert r.status_code == 422
    assert r.json()["reason"] == "Invalid"
    assert "name or generateName is required" in r.json()["message"]


def test_invalid_name_is_422_with_causes(kube: Kube, ns: str) -> None:
    r = kube.post(cm_path(ns), configmap("Bad_Name"))
    assert r.status_code == 422
    body = r.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"'
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"


def test_create_in_missing_namespace_is_404(kube: Kube) -> None:
    r = kube.post(cm_path("no-such-ns-x"), configmap("a"))
    assert r.status_code == 404
    assert r.json()["message"] == 'namespaces "no-such-ns-x" not found'


def test_namespace_mismatch_is_400(kube: Kube, ns: str) -> None:
    r = kube.post(cm_path(ns), configmap("a", namespace="default"))
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    assert "does not match the namespace" in r.json()["message"]


def test_malformed_json_wrong_kind_unknown_resource(kube: Kube, ns: str) -> None:
    r = kube.post(cm_path(ns), b"{not json")
    assert r.status_code == 400 and r.json()["kind"] == "Status"
    r = kube.post(cm_path(ns), {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    r = kube.get(f"/api/v1/namespaces/{ns}/frobnicators")
    assert r.status_code == 404
    r = kube.get("/apis/nope.example.com/v1/things")
    assert r.status_code == 404


def test_oversized_body_is_413(kube: Kube, ns: str) -> None:
    r = kube.post(cm_path(ns), configmap("big", {"x": "a" * (3 * 1024 * 1024 + 10)}))
    assert r.status_code == 413
    assert r.json()["reason"] == "RequestEntityTooLarge"
    assert kube.get("/version").status_code == 200  # still serving


def test_unknown_token_is_401_status(kube: Kube) -> None:
    r = kube.http.get("/api/v1/namespaces", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    assert r.json()["kind"] == "Status" and r.json()["reason"] == "Unauthorized"


def test_dry_run_create_stores_nothing(kube: Kube, ns: str) -> None:
    r = kube.post(cm_path(ns), configmap("dry"), params={"dryRun": "All"})
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dry"
    assert kube.get(cm_path(ns, "dry")).status_code == 404


def test_delete_preconditions_and_delete(kube: Kube, ns: str) -> None:
    created = kube.post(cm_path(ns), configmap("a")).json()
    wrong, uid = str(uuid.uuid4()), created["metadata"]["uid"]
    r = kube.delete(
        cm_path(ns, "a"),
        {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": wrong}},
    )
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert r.json()[
        "message"
    ] == (  # kube-apiserver 1.28's words (kube-validation misc-delete-precondition-uid)
        f'Operation cannot be fulfilled on ConfigMap "a": the UID in the precondition ({wrong}) does not '
        f"match the UID in record ({uid}). The object might have been deleted and then recreated"
    )
    assert r.json()["details"] == {"name": "a", "kind": "ConfigMap"}
    r = kube.delete(cm_path(ns, "a"), {"preconditions": {"resourceVersion": "1"}})
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    r = kube.delete(cm_path(ns, "a"), {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert r.status_code == 200, r.text
    assert kube.get(cm_path(ns, "a")).status_code == 404
    assert kube.delete(cm_path(ns, "a")).status_code == 404


def test_finalizers_block_deletion_until_removed(kube: Kube, ns: str) -> None:
    kube.post(cm_path(ns), configmap("f", finalizers=["example.com/hold"]))
    r = kube.delete(cm_path(ns, "f"))
    assert r.status_code == 200
    marked = kube.get(cm_path(ns, "f")).json()
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["example.com/hold"]
    r = kube.patch(
        cm_path(ns, "f"), {"metadata": {"finalizers": ["example.com/other"]}}, "application/merge-patch+json"
    )
    assert r.status_code == 422  # no new finalizers while deleting
    r = kube.patch(cm_path(ns, "f"), {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert r.status_code == 200, r.text
    assert kube.get(cm_path(ns, "f")).status_code == 404


def test_list_pagination_returns_every_item_once(kube: Kube, ns: str) -> None:
    for i in range(7):
        kube.post(cm_path(ns), configmap(f"c{i}"))
    seen: list[str] = []
    params = {"limit": "3"}
    pages = 0
    while True:
        body = kube.get(cm_path(ns), params=params).json()
        pages += 1
        seen += [i["metadata"]["name"] for i in body["items"] if i["metadata"]["name"] not in CLUSTER_MADE]
        token = body["metadata"].get("continue")
        if not token:
            break
        params = {"limit": "3", "continue": token}
    assert sorted(seen) == [f"c{i}" for i in range(7)] and len(seen) == 7
    assert pages == 3


def test_label_selectors(kube: Kube, ns: str) -> None:
    kube.post(cm_path(ns), configmap("a", labels={"app": "web", "tier": "fe"}))
    kube.post(cm_path(ns), configmap("b", labels={"app": "db"}))
    kube.post(cm_path(ns), configmap("c"))

    def names(sel: str) -> list[str]:
        r = kube.get(cm_path(ns), params={"labelSelector": sel})
        assert r.status_code == 200, r.text
        return sorted(
            i["metadata"]["name"] for i in r.json()["items"] if i["metadata"]["name"] not in CLUSTER_MADE
        )

    assert names("app=web") == ["a"]
    assert names("app==web") == ["a"]
    assert names("app!=web") == ["b", "c"]
    assert names("app in (web,db)") == ["a", "b"]
    assert names("app notin (web)") == ["b", "c"]
    assert names("app") == ["a", "b"]
    assert names("!app") == ["c"]
    assert kube.get(cm_path(ns), params={"labelSelector": "app in"}).status_code == 400


def test_pod_field_selectors(kube: Kube, ns: str) -> None:
    kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p1", nodeName="n1"))
    kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p2", schedulerName=UNSCHEDULED))  # no scheduler binds it
    r = kube.get(f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "spec.nodeName=n1"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["p1"]
    r = kube.get(f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "metadata.name=p2"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["p2"]
    r = kube.get(f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "status.phase=Pending"})
    assert sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["p1", "p2"]
    r = kube.get(f"/api/v1/namespaces/{ns}/pods", params={"fieldSelector": "spec.bogus=x"})
    assert r.status_code == 400


def test_field_validation(kube: Kube, ns: str) -> None:
    body = configmap("s")
    body["bogus"] = 1
    r = kube.post(cm_path(ns), body, params={"fieldValidation": "Strict"})
    assert r.status_code == 400 and 'unknown field "bogus"' in r.json()["message"]
    r = kube.post(cm_path(ns), body, params={"fieldValidation": "Warn"})
    assert r.status_code == 201
    assert 'unknown field \\"bogus\\"' in r.headers.get("Warning", "")
    assert "bogus" not in kube.get(cm_path(ns, "s")).json()
    body["metadata"]["name"] = "i"
    r = kube.post(cm_path(ns), body, params={"fieldValidation": "Ignore"})
    assert r.status_code == 201 and "Warning" not in r.headers


def test_large_list_is_complete_json(kube: Kube, ns: str) -> None:
    for i in range(600):
        assert kube.post(cm_path(ns), configmap(f"m{i:03d}", {"i": str(i)})).status_code == 201
    body = kube.get(cm_path(ns)).json()
    assert body["kind"] == "ConfigMapList"
    names = [i["metadata"]["name"] for i in body["items"] if i["metadata"]["name"] not in CLUSTER_MADE]
    assert names == [f"m{i:03d}" for i in range(600)]
