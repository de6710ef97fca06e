"""The serving certificate: a private CA (kept in the data dir) signing a leaf with the SANs clients dial.

Reused across restarts so an issued kubeconfig stays valid; re-issued when the bind address is not yet
among its SANs.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.fsutil import write_atomic

DNS_SANS = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
]


@dataclass(frozen=True)
class ServingCert:
    ca_pem: bytes
    cert_file: Path
    key_file: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _sans(bind: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in DNS_SANS]
    host = socket.gethostname()
    if host and host not in DNS_SANS:
        names.append(x509.DNSName(host))
    ips = {"127.0.0.1", "::1"}
    try:
        ip = ipaddress.ip_address(bind)
        if not ip.is_unspecified:
            ips.add(str(ip))
        else:  # every address: the host's own addresses are what remote clients dial
            try:
                ips.update(a for a in socket.gethostbyname_ex(host)[2] if a)
            except OSError:
                pass
    except ValueError:
        if bind and bind not in DNS_SANS:
            names.append(x509.DNSName(bind))
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in sorted(ips)]
    return names


def _covers(cert: x509.Certificate, bind: str) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    want = set(_sans(bind))
    return want <= set(san) and cert.not_valid_after_utc > _now() + datetime.timedelta(days=30)


def ensure_serving_cert(pki: Path, bind: str) -> ServingCert:
    pki.mkdir(mode=0o700, parents=True, exist_ok=True)  # holds the CA and service-account keys
    ca_crt, ca_key = pki / "ca.crt", pki / "ca.key"
    crt, key = pki / "apiserver.crt", pki / "apiserver.key"
    if ca_crt.exists() and ca_key.exists():
        ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        ca_priv = serialization.load_pem_private_key(ca_key.read_bytes(), None)
        assert isinstance(ca_priv, ec.EllipticCurvePrivateKey)
    else:
        ca_priv = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kedge-apiserver-ca")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(ca_priv.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_priv.public_key()), critical=False)
            .sign(ca_priv, hashes.SHA256())
        )
        write_atomic(ca_key, _key_pem(ca_priv))
        write_atomic(ca_crt, ca.public_bytes(serialization.Encoding.PEM), mode=0o644)
    if crt.exists() and key.exists() and _covers(x509.load_pem_x509_certificate(crt.read_bytes()), bind):
        return ServingCert(ca_crt.read_bytes(), crt, key)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    extra = x509.SubjectAlternativeName(_sans(bind))
    _issue_leaf(ca, ca_priv, subject, ExtendedKeyUsageOID.SERVER_AUTH, crt, key, extra)
    return ServingCert(ca_crt.read_bytes(), crt, key)


KUBELET_CLIENT_CN = "kedge:apiserver"  # a CN the cloud's stream endpoint takes (stream.clients)


def ensure_kubelet_client_cert(pki: Path) -> tuple[Path, Path]:
    """The certificate the server presents to kubelets (for kedge edges: the cloud's stream endpoint),
    signed by the same CA as its serving certificate (kubeadm's apiserver-kubelet-client); made once.
    ``ensure_serving_cert`` first (it makes the CA)."""
    crt, key = pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key"
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        if cert.not_valid_after_utc > _now() + datetime.timedelta(days=30):
            return crt, key
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    ca_priv = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(ca_priv, ec.EllipticCurvePrivateKey)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, KUBELET_CLIENT_CN),
        ]
    )
    _issue_leaf(ca, ca_priv, subject, ExtendedKeyUsageOID.CLIENT_AUTH, crt, key)
    return crt, key


def _issue_leaf(
    ca: x509.Certificate,
    ca_priv: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    crt: Path,
    key: Path,
    extra: x509.ExtensionType | None = None,
) -> None:
    """A one-year leaf of the CA for ``usage`` (server or client auth), written to ``crt``/``key``."""
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=365))
    )
    if extra is not None:
        builder = builder.add_extension(extra, critical=False)
    leaf = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_priv.public_key()), critical=False
        )
        .sign(ca_priv, hashes.SHA256())
    )
    write_atomic(key, _key_pem(leaf_key))
    write_atomic(crt, leaf.public_bytes(serialization.Encoding.PEM), mode=0o644)
