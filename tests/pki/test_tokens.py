"""Join tokens: KubeEdge's `<ca hash>.<JWT>` format, HS256 signature, expiry, CA pinning."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from runtime.pki import certs, tokens


@pytest.fixture(scope="module")
def ca() -> certs.CA:
    return certs.CA.generate()


def test_token_format_matches_kubeedge(ca: certs.CA) -> None:
    key = tokens.new_signing_key()
    claims, token = tokens.make_token(ca.cert_der, key, ttl=3600, description="lab", node="edge-1", now=1000)
    parts = token.split(".")
    assert len(parts) == 4  # KubeEdge's VerifyCAAndGetRealToken splits into exactly four
    assert parts[0] == hashlib.sha256(ca.cert_der).hexdigest()
    header = json.loads(base64.urlsafe_b64decode(parts[1] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    # an independent HS256 check (what golang-jwt does): HMAC-SHA256 over "<header>.<payload>"
    mac = hmac.new(key, f"{parts[1]}.{parts[2]}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == parts[3]
    assert claims.exp == 4600 and claims.node == "edge-1"
    jwt = tokens.check_ca(token, ca.cert_der)
    got = tokens.verify_jwt(jwt, key, now=1001)
    assert got == claims


def test_expired_bad_signature_and_malformed(ca: certs.CA) -> None:
    key = tokens.new_signing_key()
    _, token = tokens.make_token(ca.cert_der, key, ttl=10, now=1000)
    jwt = tokens.split_token(token)[1]
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify_jwt(jwt, key, now=1010)
    assert exc.value.reason == "expired" and "expired" in str(exc.value)
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify_jwt(jwt, tokens.new_signing_key(), now=1001)
    assert exc.value.reason == "signature"
    for bad in ("abc", "a.b.c", jwt[:-3] + "!!!", "e30.e30"):
        with pytest.raises(tokens.TokenError) as exc:
            tokens.verify_jwt(bad, key, now=1001)
        assert exc.value.reason in ("malformed", "signature")
    with pytest.raises(tokens.TokenError) as exc:
        tokens.split_token("nothex." + jwt)
    assert exc.value.reason == "malformed"


def test_tampered_claims_fail_signature(ca: certs.CA) -> None:
    key = tokens.new_signing_key()
    _, token = tokens.make_token(ca.cert_der, key, ttl=10, now=1000)
    head, _payload, sig = tokens.split_token(token)[1].split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"exp": 10**12, "jti": "x"}).encode()).rstrip(b"=").decode()
    with pytest.raises(tokens.TokenError) as exc:
        tokens.verify_jwt(f"{head}.{forged}.{sig}", key, now=1001)
    assert exc.value.reason == "signature"


def test_ca_pinning_refuses_other_ca(ca: certs.CA) -> None:
    _, token = tokens.make_token(ca.cert_der, tokens.new_signing_key())
    with pytest.raises(tokens.TokenError) as exc:
        tokens.check_ca(token, certs.CA.generate().cert_der)
    assert exc.value.reason == "ca"


def test_kubeedge_token_parses() -> None:
    """A KubeEdge token (signed by cloudcore with its CA key; claims only exp) splits the same way."""
    kube_ca = certs.CA.generate()
    jwt = tokens.sign_jwt({"exp": 4102444800}, kube_ca.key_der)
    token = f"{hashlib.sha256(kube_ca.cert_der).hexdigest()}.{jwt}"
    assert tokens.check_ca(token, kube_ca.cert_der) == jwt
    assert tokens.unverified_claims(jwt) == {"exp": 4102444800}
