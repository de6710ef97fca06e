"""CA, serving and edge certificates with real cryptography, verified by real TLS handshakes."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.pki import certs, tls


@pytest.fixture(scope="module")
def ca() -> certs.CA:
    return certs.CA.generate()


def test_ca_is_p256_and_round_trips_through_der(ca: certs.CA) -> None:
    assert isinstance(ca.key.curve, ec.SECP256R1)
    again = certs.CA.from_der(ca.cert_der, ca.key_der)
    assert again.cert_der == ca.cert_der and again.hash == ca.hash
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert certs.remaining(ca.cert) > dt.timedelta(days=365 * 50)


def test_ca_from_der_refuses_mismatched_key(ca: certs.CA) -> None:
    other = certs.CA.generate()
    with pytest.raises(Exception, match="do not match"):
        certs.CA.from_der(ca.cert_der, other.key_der)


def test_serving_cert_sans_and_lifetime(ca: certs.CA) -> None:
    cert, _key = ca.issue_serving(["10.0.0.5", "cloud.example.com", "::1", "10.0.0.5"])
    assert certs.sans_of(cert) == {"10.0.0.5", "cloud.example.com", "::1"}
    assert certs.sans_of(cert) == certs.wanted_sans(["cloud.example.com", "::1", "10.0.0.5"])
    left = certs.remaining(cert)
    assert dt.timedelta(days=364) < left <= dt.timedelta(days=365)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    cert.verify_directly_issued_by(ca.cert)


def test_edge_cert_from_csr(ca: certs.CA) -> None:
    key = certs.new_key()
    cert = ca.sign_node_csr(certs.make_csr(key, "edge-1"), "edge-1")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:edge-1"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert dt.timedelta(days=364) < certs.remaining(cert) <= dt.timedelta(days=365)
    assert ca.verify_client(cert) == "edge-1"
    assert certs.key_hash(cert) == certs.key_hash(key.public_key())
    assert certs.key_hash(cert).startswith("sha256:") and len(certs.key_hash(cert)) == 71


def test_csr_with_other_subject_is_rejected(ca: certs.CA) -> None:
    key = certs.new_key()
    with pytest.raises(certs.CSRRejected, match="subject mismatch"):
        ca.sign_node_csr(certs.make_csr(key, "edge-2"), "edge-1")
    odd = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:edge-1")])  # no O
    csr = x509.CertificateSigningRequestBuilder().subject_name(odd).sign(key, hashes.SHA256())
    from cryptography.hazmat.primitives import serialization

    with pytest.raises(certs.CSRRejected, match="subject mismatch"):
        ca.sign_node_csr(csr.public_bytes(serialization.Encoding.DER), "edge-1")
    with pytest.raises(certs.CSRRejected, match="malformed CSR"):
        ca.sign_node_csr(b"\x30\x03garbage", "edge-1")


def test_client_cert_from_other_ca_is_refused(ca: certs.CA) -> None:
    other = certs.CA.generate()
    cert = other.sign_node_csr(certs.make_csr(certs.new_key(), "edge-1"), "edge-1")
    with pytest.raises(Exception, match="CA"):
        ca.verify_client(cert)
    expired = ca.sign_node_csr(
        certs.make_csr(certs.new_key(), "edge-1"),
        "edge-1",
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=400),
    )
    with pytest.raises(Exception, match="expired"):
        ca.verify_client(expired)


async def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, host: str) -> str | None:
    """Real TLS over loopback; returns the node named in the client certificate the server saw."""
    seen: list[str | None] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        seen.append(certs.node_of(certs.load_cert(der)) if der else None)
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname=host
        )
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return seen[0]


async def test_mutual_tls_with_issued_certificates(ca: certs.CA) -> None:
    scert, skey = ca.issue_serving(["127.0.0.1", "localhost"])
    ekey = certs.new_key()
    ecert = ca.sign_node_csr(certs.make_csr(ekey, "edge-9"), "edge-9")
    server_ctx = tls.server_context(
        certs.cert_der(scert), certs.key_der(skey), ca.cert_der, require_client_cert=True
    )
    client_ctx = tls.client_context(ca.cert_der, certs.cert_der(ecert), certs.key_der(ekey))
    assert await _handshake(server_ctx, client_ctx, "localhost") == "edge-9"
    assert await _handshake(server_ctx, client_ctx, "127.0.0.1") == "edge-9"


async def test_hostname_not_in_sans_fails_verification(ca: certs.CA) -> None:
    scert, skey = ca.issue_serving(["127.0.0.1"])
    server_ctx = tls.server_context(certs.cert_der(scert), certs.key_der(skey), ca.cert_der)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(server_ctx, tls.client_context(ca.cert_der), "cloud.example.com")


async def test_client_refuses_server_of_other_ca(ca: certs.CA) -> None:
    other = certs.CA.generate()
    scert, skey = other.issue_serving(["127.0.0.1"])
    server_ctx = tls.server_context(certs.cert_der(scert), certs.key_der(skey), other.cert_der)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _handshake(server_ctx, tls.client_context(ca.cert_der), "127.0.0.1")


def test_legacy_kubeedge_csr_subject_gets_a_node_certificate(ca: certs.CA) -> None:
    """Older edgecores ask for CN=kubeedge.io O=kubeEdge (plus C/L/ST); the node still gets its own CN."""
    from cryptography.hazmat.primitives import serialization

    key = certs.new_key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kubeEdge"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Hangzhou"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Zhejiang"),
        x509.NameAttribute(NameOID.COMMON_NAME, "kubeedge.io"),
    ])  # fmt: skip
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    cert = ca.sign_node_csr(csr.public_bytes(serialization.Encoding.DER), "edge-old")
    assert certs.node_of(cert) == "edge-old"


async def test_reload_chain_swaps_the_certificate_for_new_handshakes(ca: certs.CA) -> None:
    """The running cloud re-issues its serving certificate in place (no restart, no new socket)."""
    old_cert, old_key = ca.issue_serving(["127.0.0.1"])
    new_cert, new_key = ca.issue_serving(["127.0.0.1", "cloud.renewed"])
    server_ctx = tls.server_context(certs.cert_der(old_cert), certs.key_der(old_key), ca.cert_der)
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        for swap in (False, True):
            if swap:
                tls.reload_chain(server_ctx, certs.cert_der(new_cert), certs.key_der(new_key))
            _, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=tls.client_context(ca.cert_der), server_hostname="127.0.0.1"
            )
            seen.append(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen == [certs.cert_der(old_cert), certs.cert_der(new_cert)]
