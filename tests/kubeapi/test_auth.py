"""Service-account tokens (TokenRequest), who-am-I and access reviews."""

from __future__ import annotations

import base64
import json
import ssl
import time
from typing import Any

import httpx
import pytest

from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, pod


def claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return out


def as_token(kube: Kube, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=kube.server.url,
        verify=ssl.create_default_context(cafile=str(kube.server.ca_file)),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def whoami(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )


def test_pod_bound_token_request(kube: Kube, ns: str) -> None:
    sa = kube.post(
        f"/api/v1/namespaces/{ns}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
    ).json()
    p = kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p", serviceAccountName="robot")).json()
    req = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": ["api", "vault"],
            "expirationSeconds": 3607,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": p["metadata"]["uid"]},
        },
    }
    r = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", req)
    assert r.status_code == 201, r.text
    tr = r.json()
    assert tr["kind"] == "TokenRequest" and tr["status"]["expirationTimestamp"]
    c = claims(tr["status"]["token"])
    assert c["aud"] == ["api", "vault"]
    assert c["sub"] == f"system:serviceaccount:{ns}:robot"
    assert abs(c["exp"] - c["iat"] - 3607) <= 5 or c["exp"] - c["iat"] > 3607  # real servers may extend
    assert c["kubernetes.io"]["pod"] == {"name": "p", "uid": p["metadata"]["uid"]}
    assert c["kubernetes.io"]["serviceaccount"]["uid"] == sa["metadata"]["uid"]
    assert abs(c["iat"] - time.time()) < 60


def test_token_authenticates_until_its_pod_is_gone(kube: Kube, ns: str) -> None:
    kube.post(
        f"/api/v1/namespaces/{ns}/serviceaccounts",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}},
    )
    p = kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p", serviceAccountName="robot")).json()
    req = {
        "spec": {
            "audiences": [],
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": p["metadata"]["uid"]},
        }
    }
    tok = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", req).json()["status"]["token"]
    with as_token(kube, tok) as c:
        r = whoami(c)
        assert r.status_code == 201, r.text
        assert r.json()["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:robot"
        kube.delete(f"/api/v1/namespaces/{ns}/pods/p", {"gracePeriodSeconds": 0})
        eventually(lambda: whoami(c).status_code == 401, 30, "the bound token refused once its pod is gone")


def test_token_request_refusals(kube: Kube, ns: str) -> None:
    r = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/ghost/token", {"spec": {}})
    assert r.status_code == 404 and r.json()["message"] == 'serviceaccounts "ghost" not found'
    kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "robot"}})
    r = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", {"spec": {"expirationSeconds": 60}})
    assert r.status_code == 422
    r = kube.post(
        f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token",
        {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "nope"}}},
    )
    assert r.status_code == 404


def test_admin_is_allowed_everything(kube: Kube) -> None:
    r = kube.post(
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "namespace": "default"}},
        },
    )
    assert r.status_code == 201
    assert r.json()["status"]["allowed"] is True


TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESSREVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def token_review(kube: Kube, token: str, audiences: list[str] | None = None) -> httpx.Response:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    return kube.post(
        TOKENREVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    )


def test_token_review_names_the_user_of_a_token_this_server_issued(kube: Kube, ns: str) -> None:
    sa = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "robot"}}).json()
    p = kube.post(f"/api/v1/namespaces/{ns}/pods", pod("p", serviceAccountName="robot")).json()
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": p["metadata"]["uid"]}
    req = {"spec": {"audiences": ["api", "vault"], "boundObjectRef": ref}}
    tok = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", req).json()["status"]["token"]
    r = token_review(kube, tok, ["vault", "other"])
    assert r.status_code == 201, r.text
    review = r.json()
    assert review["kind"] == "TokenReview" and review["spec"]["token"] == tok
    status = review["status"]
    assert status["authenticated"] is True and status["audiences"] == ["vault"]
    user = status["user"]
    assert user["username"] == f"system:serviceaccount:{ns}:robot"
    assert user["uid"] == sa["metadata"]["uid"]
    assert user["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{ns}",
        "system:authenticated",
    ]
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [p["metadata"]["uid"]]
    # for none of its audiences (and, asked for none, not for the API server's own): not authenticated
    assert token_review(kube, tok, ["other"]).json()["status"] == {"user": {}}
    assert token_review(kube, tok).json()["status"] == {"user": {}}
    kube.delete(f"/api/v1/namespaces/{ns}/pods/p", {"gracePeriodSeconds": 0})
    eventually(
        lambda: token_review(kube, tok, ["api"]).json()["status"] == {"user": {}},
        30,
        "the bound token no longer authenticates once its pod is gone",
    )


def test_token_review_of_the_admin_token_and_of_a_forged_one(kube: Kube) -> None:
    if not kube.server.token:
        pytest.skip("KEDGE_TEST_KUBECONFIG's user has no bearer token to review")
    r = token_review(kube, kube.server.token)
    assert r.status_code == 201, r.text
    status = r.json()["status"]
    assert status["authenticated"] is True and status["user"]["username"]
    if kube.server.embedded:
        assert status["user"] == {"username": "admin", "groups": ["system:masters", "system:authenticated"]}
    forged = kube.server.token[:-4] + "AAAA"
    assert token_review(kube, forged).json()["status"].get("authenticated") is not True
    empty = token_review(kube, "")
    assert (
        empty.status_code == 400
        and empty.json()["message"] == "token is required for TokenReview in authentication"
    )


def access_review(kube: Kube, spec: dict[str, Any]) -> httpx.Response:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    return kube.post(ACCESSREVIEWS, body)


def test_subject_access_review_answers_with_the_servers_authorization(kube: Kube) -> None:
    nodes = {"verb": "get", "resource": "nodes", "subresource": "metrics"}
    r = access_review(kube, {"user": "someone", "groups": ["system:masters"], "resourceAttributes": nodes})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["resourceAttributes"] == nodes and r.json()["status"]["allowed"] is True
    anonymous = {"user": "system:anonymous", "groups": ["system:unauthenticated"]}
    assert (
        access_review(kube, {**anonymous, "resourceAttributes": nodes}).json()["status"]["allowed"] is False
    )
    health = access_review(kube, {**anonymous, "nonResourceAttributes": {"path": "/healthz", "verb": "get"}})
    assert health.json()["status"]["allowed"] is True  # the public paths (system:public-info-viewer)
    bad = access_review(kube, {"resourceAttributes": nodes})
    assert bad.status_code == 422
    assert bad.json()["message"] == (
        'SubjectAccessReview.authorization.k8s.io "" is invalid: '
        'spec.user: Invalid value: "": at least one of user or group must be specified'
    )
    if kube.server.embedded:  # no RBAC here: every authenticated user may do everything
        plain = access_review(kube, {"user": "someone", "resourceAttributes": nodes}).json()["status"]
        assert plain["allowed"] is True
