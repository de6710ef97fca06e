"""ssl contexts built from in-memory DER (the ssl module only loads files, so we use a 0600 temp dir).

Why one place: the bootstrap server (:10002, client certificate optional) and CloudHub (:10000,
client certificate required) must offer the same ECDSA certificate and TLS floor (1.2+), and every
client (the edge's, the tests') the same floor and trust rules. ``verify_context`` takes PEM text or a
file and imports no ``cryptography`` (the edge calls it); the DER-based ones load certificates with it.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path


def _load_chain(ctx: ssl.SSLContext, cert_der: bytes, key_der: bytes) -> None:
    from runtime.pki import certs

    with tempfile.TemporaryDirectory(prefix="kedge-tls-") as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(certs.cert_pem(certs.load_cert(cert_der)))
        key_file.touch(mode=0o600)
        key_file.write_bytes(certs.key_pem(certs.load_key(key_der)))
        ctx.load_cert_chain(str(cert_file), str(key_file))


def _ca_pem(ca_der: bytes) -> str:
    from runtime.pki import certs

    return certs.cert_pem(certs.load_cert(ca_der)).decode("ascii")


def verify_context(
    ca_pem: str | None, *, cafile: str | None = None, check_hostname: bool = True
) -> ssl.SSLContext:
    """A TLS 1.2+ client context trusting only the CA given as PEM text or file; neither: no verification
    (only to fetch /ca.crt, whose hash the join token pins)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem is None and cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cafile=cafile, cadata=ca_pem)
        ctx.check_hostname = check_hostname
    return ctx


def server_context(
    cert_der: bytes, key_der: bytes, ca_der: bytes, *, require_client_cert: bool = False
) -> ssl.SSLContext:
    """Server side: our certificate; client certificates verified against the CA (optional or required)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert_der, key_der)
    ctx.load_verify_locations(cadata=_ca_pem(ca_der))
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_ca_server_context(
    cert_der: bytes, key_der: bytes, client_ca_pem: str, *, require_client_cert: bool = True
) -> ssl.SSLContext:
    """Server side for clients of another CA (the stream endpoint: API servers' kubelet-client
    certificates come from the cluster's CA, not kedge's): a client certificate is required, or
    optional (verified when given) where a bearer token may stand in for it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert_der, key_der)
    ctx.load_verify_locations(cadata=client_ca_pem)
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca_der: bytes | None, cert_der: bytes | None = None, key_der: bytes | None = None
) -> ssl.SSLContext:
    """Client side: trust only the cluster CA (None: no verification — only to fetch /ca.crt)."""
    ctx = verify_context(None if ca_der is None else _ca_pem(ca_der))
    if cert_der is not None and key_der is not None:
        _load_chain(ctx, cert_der, key_der)
    return ctx


def reload_chain(ctx: ssl.SSLContext, cert_der: bytes, key_der: bytes) -> None:
    """Swap the certificate of a live context: later handshakes use it, open connections keep theirs."""
    _load_chain(ctx, cert_der, key_der)
