"""Service-account tokens (TokenRequest), who-am-I and access reviews."""

from __future__ import annotations

import base64
import json
import ssl
import time
from typing import Any

import httpx

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
