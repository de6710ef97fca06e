"""metrics-server's default: its ServiceAccount bearer token on the kubelet's usage routes (issue 20).

The stream endpoint reviews the token as kubelet does — TokenReview, then SubjectAccessReview for get
nodes/metrics or nodes/stats — against the API server through the cloud's client: the embedded API
server (or, with KEDGE_TEST_KUBECONFIG, a real cluster). The admin token reads and a forged one does
not; a ServiceAccount token (metrics-server's) reads on the embedded server, where every authenticated
user may do everything, and is forbidden on a real cluster until RBAC grants it; an API server that
cannot be reached refuses (fail closed) and nothing is kept. Streams (logs, exec, attach,
port-forward) never take a bearer token.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from runtime.cloud.streams.bearer import BearerReviews
from runtime.cloud.streams.endpoint import StreamEndpoint
from runtime.cloud.usage import UsageStore
from runtime.cloud.usage.kubelet import by_address
from runtime.kube.client import make_client
from runtime.pki import certs, tls
from tests.fixtures.apiserver import ApiServer, http_client
from tests.unit.cloud.test_usage_kubelet import msg, report

HOST = {"Host": "192.0.2.7:10351"}


@pytest.fixture
async def endpoint(tls_certs: Any, apiserver: ApiServer) -> AsyncIterator[tuple[str, BearerReviews]]:
    store = UsageStore()
    await store.on_message("edge-1", msg({**report(1_700_000_015_000, 3 * 10**9), "ip": "192.0.2.7"}))
    cert, key = tls_certs.server.der()
    ca = certs.cert_pem(tls_certs.authority.cert).decode()
    sslctx = tls.client_ca_server_context(cert, key, ca, require_client_cert=False)

    async def no_pods(ns: str, name: str) -> dict[str, Any]:
        raise AssertionError("a bearer token opens no stream")

    client = make_client(apiserver.kubeconfig)
    bearer = BearerReviews(client)
    ep = StreamEndpoint(None, no_pods, sslctx, ["kube-apiserver-kubelet-client"], by_address(store), bearer)  # type: ignore[arg-type]
    port = await ep.start("127.0.0.1", 0)
    try:
        yield f"https://127.0.0.1:{port}", bearer
    finally:
        await ep.stop()
        await client.close()


def anonymous(tls_certs: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=certs.cert_pem(tls_certs.authority.cert).decode())
    return ctx


async def test_bearer_tokens_are_reviewed_by_the_api_server(
    endpoint: tuple[str, BearerReviews], tls_certs: Any, apiserver: ApiServer
) -> None:
    url, bearer = endpoint
    if not apiserver.embedded and not apiserver.token:
        pytest.skip("KEDGE_TEST_KUBECONFIG's user has no bearer token to review")
    token = {"Authorization": f"Bearer {apiserver.token}", **HOST}
    forged = {"Authorization": "Bearer not-a-token", **HOST}
    async with httpx.AsyncClient(verify=anonymous(tls_certs), base_url=url) as http:
        nothing = await http.get("/metrics/resource", headers=HOST)
        admin = await http.get("/metrics/resource", headers=token)
        summary = await http.get("/stats/summary", headers=token)
        bad = await http.get("/metrics/resource", headers=forged)
        logs = await http.get("/containerLogs/default/p/c", headers=token)
        exec_ = await http.post("/exec/default/p/c?command=id&stdout=1", headers=token)
    assert nothing.status_code == 403  # neither a certificate nor a token
    assert bad.status_code == 401, bad.text
    assert logs.status_code == 403 and exec_.status_code == 403  # streams: certificates only
    assert admin.status_code == 200 and "container_cpu_usage_seconds_total" in admin.text
    assert summary.status_code == 200 and summary.json()["node"]["nodeName"] == "edge-1"
    assert (apiserver.token, "metrics") in bearer._cache
    kubelet_client = tls_certs.client_context(tls_certs.client("ak", cn="kube-apiserver-kubelet-client"))
    async with httpx.AsyncClient(verify=kubelet_client, base_url=url) as http:
        cert_read = await http.get("/metrics/resource", headers=HOST)
    assert cert_read.status_code == 200  # the certificate path is unchanged


async def test_a_service_account_token_is_reviewed_with_the_servers_authorization(
    endpoint: tuple[str, BearerReviews], tls_certs: Any, apiserver: ApiServer
) -> None:
    url, _ = endpoint
    ns, sa = "kube-system", f"ms-{uuid.uuid4().hex[:8]}"
    with http_client(apiserver) as kube:
        made = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": sa}})
        assert made.status_code == 201, made.text
        try:
            issued = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", json={"spec": {}})
            assert issued.status_code == 201, issued.text
            token = {"Authorization": f"Bearer {issued.json()['status']['token']}", **HOST}
            async with httpx.AsyncClient(verify=anonymous(tls_certs), base_url=url) as http:
                read = await http.get("/metrics/resource", headers=token)
        finally:
            kube.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}")
    if apiserver.embedded:  # no RBAC: every authenticated user may do everything
        assert read.status_code == 200 and "container_cpu_usage_seconds_total" in read.text, read.text
    else:  # RBAC: nothing grants this new account get on nodes/metrics
        assert read.status_code == 403, read.text
        who = f"user=system:serviceaccount:{ns}:{sa}"
        assert read.text == f"Forbidden ({who}, verb=get, resource=nodes, subresource=metrics)"


async def test_an_api_server_that_cannot_review_refuses_and_nothing_is_kept(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    doc = yaml.safe_load(apiserver.kubeconfig.read_text())
    for c in doc["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{port}"
    gone = tmp_path / "gone.kubeconfig"
    gone.write_text(yaml.safe_dump(doc))
    client = make_client(gone)
    try:
        bearer = BearerReviews(client)
        assert await bearer.check(apiserver.token or "t", "/metrics/resource") == (
            401,
            "Unauthorized: the API server could not review the token",
        )
        assert bearer._cache == {}
    finally:
        await client.close()
