"""The bootstrap HTTPS server against the embedded API server: KubeEdge's request shapes, refusals."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from runtime.kube.resources import NODES
from runtime.pki import ANN_KEY_HASH, certs, tokens
from tests.fixtures.cloudinit import BootstrapServer


def _client(srv: BootstrapServer, cert: bytes | None = None, key: bytes | None = None) -> httpx.AsyncClient:
    ctx = srv.ssl_client(cert, key)
    assert isinstance(ctx, ssl.SSLContext)
    return httpx.AsyncClient(base_url=srv.url, verify=ctx, timeout=10)


async def _join(srv: BootstrapServer, token: str, node: str, key: object = None) -> httpx.Response:
    """What keadm/edgecore does: GET /ca.crt, pin it by the token's hash, GET /edge.crt with the CSR."""
    async with httpx.AsyncClient(base_url=srv.url, verify=False, timeout=10) as anon:
        ca_der = (await anon.get("/ca.crt")).content
    jwt = tokens.check_ca(token, ca_der)
    key = key or certs.new_key()
    async with _client(srv) as c:
        return await c.request(
            "GET",
            "/edge.crt",
            headers={
                "Authorization": f"Bearer {jwt}",
                "NodeName": node,
                "Content-Type": "application/octet-stream",
            },
            content=certs.make_csr(key, node),  # type: ignore[arg-type]
        )


async def test_ca_endpoint_serves_der_matching_the_token_hash(bootstrap_server: BootstrapServer) -> None:
    srv = bootstrap_server
    _, token = await srv.store.create_token(ttl=600)
    async with _client(srv) as c:
        resp = await c.get("/ca.crt")
    assert resp.status_code == 200
    assert hashlib.sha256(resp.content).hexdigest() == token.split(".")[0]
    assert certs.load_cert(resp.content).subject == srv.ca.cert.subject


async def test_join_signs_a_client_certificate(bootstrap_server: BootstrapServer) -> None:
    srv = bootstrap_server
    _, token = await srv.store.create_token(ttl=600, description="test")
    resp = await _join(srv, token, "edge-a")
    assert resp.status_code == 200, resp.text
    cert = certs.load_cert(resp.content)
    assert certs.node_of(cert) == "edge-a"
    assert srv.ca.verify_client(cert) == "edge-a"


async def test_refusals_name_the_reason(bootstrap_server: BootstrapServer) -> None:
    srv = bootstrap_server
    info, token = await srv.store.create_token(ttl=600)
    jwt = tokens.split_token(token)[1]
    csr = certs.make_csr(certs.new_key(), "edge-b")
    async with _client(srv) as c:
        r = await c.request("GET", "/edge.crt", headers={"NodeName": "edge-b"}, content=csr)
        assert r.status_code == 401 and "no Authorization header" in r.text
        r = await c.request(
            "GET",
            "/edge.crt",
            headers={"NodeName": "edge-b", "Authorization": "Bearer not-a-jwt"},
            content=csr,
        )
        assert r.status_code == 401 and "malformed token" in r.text  # authentication: 401, as cloudcore
        r = await c.request(
            "GET", "/edge.crt", headers={"NodeName": "edge-b", "Authorization": "Basic abc"}, content=csr
        )
        assert r.status_code == 401 and "malformed token" in r.text
        r = await c.request("GET", "/edge.crt", headers={"Authorization": f"Bearer {jwt}"}, content=csr)
        assert r.status_code == 400 and "NodeName" in r.text
        r = await c.request(
            "GET", "/edge.crt", headers={"NodeName": "edge-c", "Authorization": f"Bearer {jwt}"}, content=csr
        )
        assert r.status_code == 400 and "subject mismatch" in r.text
        forged = tokens.make_token(srv.ca.cert_der, tokens.new_signing_key(), ttl=60)[1]
        r = await c.request("GET", "/edge.crt", headers={"NodeName": "edge-b",
                        "Authorization": f"Bearer {tokens.split_token(forged)[1]}"}, content=csr)  # fmt: skip
        assert r.status_code == 401 and "signature" in r.text
        await srv.store.revoke_token(info.id)
        r = await c.request(
            "GET", "/edge.crt", headers={"NodeName": "edge-b", "Authorization": f"Bearer {jwt}"}, content=csr
        )
        assert r.status_code == 401 and "revoked" in r.text
        _, short = await srv.store.create_token(ttl=-1)
        r = await c.request("GET", "/edge.crt", headers={"NodeName": "edge-b",
                        "Authorization": f"Bearer {tokens.split_token(short)[1]}"}, content=csr)  # fmt: skip
        assert r.status_code == 401 and "expired" in r.text


async def test_renewal_with_current_certificate_and_cross_node_refusal(
    bootstrap_server: BootstrapServer,
) -> None:
    srv = bootstrap_server
    _, token = await srv.store.create_token(ttl=600)
    key = certs.new_key()
    first = await _join(srv, token, "edge-d", key)
    assert first.status_code == 200
    new_key = certs.new_key()
    async with _client(srv, first.content, certs.key_der(key)) as c:
        renewed = await c.request(
            "GET", "/edge.crt", headers={"NodeName": "edge-d"}, content=certs.make_csr(new_key, "edge-d")
        )
        assert renewed.status_code == 200, renewed.text
        assert certs.key_hash(certs.load_cert(renewed.content)) == certs.key_hash(new_key.public_key())
        other = await c.request(
            "GET", "/edge.crt", headers={"NodeName": "edge-e"}, content=certs.make_csr(new_key, "edge-e")
        )
        assert other.status_code == 401 and "certificate is for node edge-d" in other.text


async def test_existing_node_with_key_hash_needs_a_node_token(bootstrap_server: BootstrapServer) -> None:
    srv = bootstrap_server
    await srv.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "edge-f", "annotations": {ANN_KEY_HASH: "sha256:" + "0" * 64}}})  # fmt: skip
    _, generic = await srv.store.create_token(ttl=600)
    r = await _join(srv, generic, "edge-f")
    assert r.status_code == 409 and "node name taken" in r.text
    _, other_node = await srv.store.create_token(ttl=600, node="edge-g")
    r = await _join(srv, other_node, "edge-f")
    assert r.status_code == 401 and "created for node edge-g" in r.text
    _, mine = await srv.store.create_token(ttl=600, node="edge-f")
    key = certs.new_key()
    r = await _join(srv, mine, "edge-f", key)
    assert r.status_code == 200, r.text
    node = await srv.client.get(NODES, "edge-f")
    assert node["metadata"]["annotations"][ANN_KEY_HASH] == certs.key_hash(key.public_key())


async def test_node_endpoint(bootstrap_server: BootstrapServer) -> None:
    srv = bootstrap_server
    await srv.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "edge-h"}})
    async with _client(srv) as c:
        assert (await c.get("/node/edge-h")).status_code == 200
        missing = await c.get("/node/edge-zz")
        assert missing.status_code == 404 and missing.text == "Node not found"


async def test_token_list_revoke_gc(bootstrap_server: BootstrapServer) -> None:
    store = bootstrap_server.store
    a, _ = await store.create_token(ttl=600, description="a")
    b, _ = await store.create_token(ttl=1200, node="edge-x")
    listed = {t.id: t for t in await store.list_tokens()}
    assert {a.id, b.id} <= set(listed) and listed[b.id].node == "edge-x"
    await store.revoke_token(a.id)
    assert {t.id: t for t in await store.list_tokens()}[a.id].revoked
    import time

    gone = await store.gc_tokens(now=time.time() + 900)
    assert a.id in gone and b.id not in gone
    with pytest.raises(Exception, match="not found"):
        await store.revoke_token(a.id)


async def test_joiner_client_against_the_server(bootstrap_server: BootstrapServer, tmp_path: Path) -> None:
    """runtime.edge.certclient is what `kedge join` and the renewal use: fetch, pin, request, renew;
    refusals typed (a token or a certificate refused, a name taken: AuthError, exit 5)."""
    from runtime.edge.certclient import CertServer, pem_of
    from runtime.errors import AuthError

    srv = bootstrap_server
    url = urlsplit(srv.url)
    host, port = str(url.hostname), int(url.port or 0)
    _, token = await srv.store.create_token(ttl=600)
    ca_der = await asyncio.to_thread(CertServer(host, port).fetch_ca)
    jwt = tokens.check_ca(token, ca_der)
    pinned = CertServer(host, port, ca_pem=pem_of(ca_der))
    assert (await asyncio.to_thread(pinned.node, "edge-j"))[0] == 404
    key = certs.new_key()
    cert = await asyncio.to_thread(
        pinned.request_certificate, "edge-j", certs.make_csr(key, "edge-j"), jwt=jwt
    )
    assert certs.node_of(certs.load_cert(cert)) == "edge-j"
    (tmp_path / "ca.crt").write_text(pinned.ca_pem or "")
    (tmp_path / "node.crt").write_bytes(certs.cert_pem(certs.load_cert(cert)))
    (tmp_path / "node.key").write_bytes(certs.key_pem(key))
    renewal = CertServer(host, port, ca_file=str(tmp_path / "ca.crt"),
                         identity=(str(tmp_path / "node.crt"), str(tmp_path / "node.key")))  # fmt: skip
    cert2 = await asyncio.to_thread(renewal.request_certificate, "edge-j", certs.make_csr(key, "edge-j"))
    assert certs.key_hash(certs.load_cert(cert2)) == certs.key_hash(key.public_key())
    assert certs.load_cert(cert2).serial_number != certs.load_cert(cert).serial_number
    with pytest.raises(AuthError, match="certificate is for node edge-j"):
        await asyncio.to_thread(renewal.request_certificate, "edge-k", certs.make_csr(key, "edge-k"))
    await srv.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "edge-l", "annotations": {ANN_KEY_HASH: "sha256:" + "1" * 64}}})  # fmt: skip
    assert (await asyncio.to_thread(pinned.node, "edge-l"))[0] == 200
    with pytest.raises(AuthError, match="node name taken"):
        csr = certs.make_csr(certs.new_key(), "edge-l")
        await asyncio.to_thread(pinned.request_certificate, "edge-l", csr, jwt=jwt)


async def test_whole_join_token_as_bearer(bootstrap_server: BootstrapServer) -> None:
    """Some clients send the whole `<hash>.<jwt>` token: accepted; a bad hash part is malformed (401)."""
    srv = bootstrap_server
    _, token = await srv.store.create_token(ttl=600)
    jwt = tokens.split_token(token)[1]
    async with _client(srv) as c:
        for bearer, status in ((token, 200), (f"zz.{jwt}", 401)):
            headers = {"NodeName": "edge-w", "Authorization": f"Bearer {bearer}"}
            r = await c.request(
                "GET", "/edge.crt", headers=headers, content=certs.make_csr(certs.new_key(), "edge-w")
            )
            assert r.status_code == status, r.text
            if status == 401:
                assert "malformed token" in r.text
