"""Join tokens against the real bootstrap server: every refusal (each reason asserted in
tests/cloud/test_bootstrap.py::test_refusals_name_the_reason) leaves it serving — the next valid join
right after succeeds. A token whose CA hash is not this cloud's is refused before anything is sent."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from runtime.errors import KedgeError
from runtime.pki import certs, tokens
from tests.cloud.test_bootstrap import _join
from tests.fixtures.cloudinit import BootstrapServer


async def test_bad_tokens_are_refused_and_the_next_join_succeeds(bootstrap_server: BootstrapServer) -> None:
    srv = bootstrap_server
    revoked_info, revoked = await srv.store.create_token(ttl=600)
    await srv.store.revoke_token(revoked_info.id)
    _, expired = await srv.store.create_token(ttl=-1)
    forged = tokens.make_token(srv.ca.cert_der, tokens.new_signing_key(), ttl=60)[1]
    for token, why in ((revoked, "revoked"), (expired, "expired"), (forged, "signature")):
        r = await _join(srv, token, "sec-a")
        assert r.status_code == 401 and why in r.text, (why, r.status_code, r.text)
    csr = certs.make_csr(certs.new_key(), "sec-a")
    async with httpx.AsyncClient(base_url=srv.url, verify=False, timeout=10) as anon:
        for auth in (b"Bearer not.a.jwt", b"Bearer " + b"x" * 70000, b"Bearer \xff\xfe"):
            r = await anon.request(
                "GET", "/edge.crt", headers={"NodeName": "sec-a", "Authorization": auth}, content=csr
            )
            assert r.status_code in (400, 401, 431), (auth[:20], r.status_code, r.text)
    # wrong CA hash: the joiner refuses the cloud's CA before sending the token
    _, good = await srv.store.create_token(ttl=600)
    wrong = hashlib.sha256(b"another CA").hexdigest() + "." + tokens.split_token(good)[1]
    with pytest.raises(KedgeError, match="does not match the token"):
        await _join(srv, wrong, "sec-a")
    ok = await _join(srv, good, "sec-a")  # healthy afterwards
    assert ok.status_code == 200, ok.text
    assert certs.node_of(certs.load_cert(ok.content)) == "sec-a"
