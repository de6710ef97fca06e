"""The cluster CA and the certificates it issues (design.md §4, ECDSA P-256 throughout).

Why ECDSA P-256: KubeEdge peers only offer ECDHE-ECDSA suites, and P-256 keys make handshakes cheap
for thousands of edges. The CA signs two kinds of leaf: the CloudHub serving certificate (SANs from
the advertise addresses) and edge client certificates from a DER CSR. Keys are stored DER-encoded
(SEC1 for EC keys, as KubeEdge stores `cakeydata`), certificates DER.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from runtime.errors import AuthError, KedgeError

CA_DAYS = 100 * 365  # long-lived: every joined edge trusts it; replacing it means re-joining all
LEAF_DAYS = 365
NODE_ORG = "system:nodes"
NODE_CN_PREFIX = "system:node:"
LEGACY_CN, LEGACY_ORG = "kubeedge.io", "kubeedge"  # edgecore before v1.17 (any case of the O)
_BACKDATE = dt.timedelta(minutes=5)
_USAGES = {
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
}  # tolerate clock skew between cloud and edge


class CSRRejected(AuthError):
    """A CSR that is malformed, badly signed or asks for a subject other than the authenticated node."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def load_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Load an EC private key from DER (SEC1 or PKCS#8) or PEM."""
    loader = (
        serialization.load_pem_private_key
        if data.lstrip().startswith(b"-----")
        else (serialization.load_der_private_key)
    )
    key = loader(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KedgeError("private key is not an EC key", hint="kedge uses ECDSA P-256 keys only")
    return key


def load_cert(data: bytes) -> x509.Certificate:
    """DER or PEM certificate."""
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ca_hash(ca_cert_der: bytes) -> str:
    """sha256 hex of the CA certificate DER: the first part of a join token (KubeEdge's hashCA)."""
    return hashlib.sha256(ca_cert_der).hexdigest()


def key_hash(public_key: ec.EllipticCurvePublicKey | x509.Certificate) -> str:
    """sha256 hex of the SubjectPublicKeyInfo DER; recorded on the Node at first join (design.md §4)."""
    pub = public_key.public_key() if isinstance(public_key, x509.Certificate) else public_key
    spki = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def not_after(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_after_utc


def remaining(cert: x509.Certificate, now: dt.datetime | None = None) -> dt.timedelta:
    return cert.not_valid_after_utc - (now or _now())


def node_of(cert: x509.Certificate) -> str | None:
    """The node a client certificate names (CN system:node:<node>, O system:nodes), else None."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if len(cns) != 1 or NODE_ORG not in orgs:
        return None
    cn = str(cns[0].value)
    return (
        cn[len(NODE_CN_PREFIX) :] if cn.startswith(NODE_CN_PREFIX) and len(cn) > len(NODE_CN_PREFIX) else None
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """ECDSA keys sign; only the CA's also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class CA:
    """A certificate authority: certificate plus key. Build with `generate` or `from_der`."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, common_name: str = "kedge-ca", days: int = CA_DAYS) -> CA:
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                _key_usage(signs_certificates=True),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_der(cls, cert_data: bytes, key_data: bytes) -> CA:
        cert, key = load_cert(cert_data), load_key(key_data)
        if cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise KedgeError("CA certificate and key do not match", hint="restore both from the same Secret")
        return cls(cert, key)

    @property
    def cert_der(self) -> bytes:
        return cert_der(self.cert)

    @property
    def key_der(self) -> bytes:
        return key_der(self.key)

    @property
    def hash(self) -> str:
        return ca_hash(self.cert_der)

    def _leaf(
        self,
        subject: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        usages: Sequence[x509.ObjectIdentifier],
        days: int,
        sans: Sequence[x509.GeneralName] = (),
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        now = now or _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(min(now + dt.timedelta(days=days), self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                _key_usage(signs_certificates=False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_serving(
        self, addresses: Iterable[str], days: int = LEAF_DAYS, now: dt.datetime | None = None
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """CloudHub serving certificate: every advertise address (IP or DNS name) becomes a SAN."""
        key = new_key()
        sans = san_list(addresses)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kedge"),
                x509.NameAttribute(NameOID.COMMON_NAME, "kedge-cloudhub"),
            ]
        )
        return self._leaf(subject, key.public_key(), [ExtendedKeyUsageOID.SERVER_AUTH], days, sans, now), key

    def sign_node_csr(
        self,
        csr_der: bytes,
        node: str,
        days: int = LEAF_DAYS,
        now: dt.datetime | None = None,
        usages: Sequence[str] = ("client",),
    ) -> x509.Certificate:
        """Edge client certificate for `node` from its DER CSR (CN system:node:<node>, O system:nodes).

        The CSR must ask for exactly that subject: a token or certificate authenticates one node, and
        signing any other subject would let it impersonate another. Older KubeEdge edgecores send the
        fixed subject CN=kubeedge.io O=KubeEdge; that names no node, so it is accepted and the
        certificate is issued for the authenticated node all the same.
        """
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError as exc:
            raise CSRRejected(f"malformed CSR for node {node}: not a DER certificate request") from exc
        if not csr.is_signature_valid:
            raise CSRRejected(f"malformed CSR for node {node}: signature does not verify")
        pub = csr.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey) or not isinstance(pub.curve, ec.SECP256R1):
            raise CSRRejected(f"CSR for node {node}: key must be ECDSA P-256")
        want_cn = NODE_CN_PREFIX + node
        cns = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        legacy = cns == [LEGACY_CN] and [o.lower() for o in orgs] == [LEGACY_ORG]
        if not legacy and (cns != [want_cn] or orgs != [NODE_ORG]):
            raise CSRRejected(
                f"subject mismatch: CSR asks for CN={','.join(cns) or '-'} O={','.join(orgs) or '-'}, "
                f"node {node} may only ask for CN={want_cn} O={NODE_ORG}"
            )
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODE_ORG),
                x509.NameAttribute(NameOID.COMMON_NAME, want_cn),
            ]
        )
        oids = [_USAGES[u] for u in usages]  # ("client",) unless a KubeEdge peer asks for ServerAuth too
        return self._leaf(subject, pub, oids, days, (), now)

    def verify_client(self, cert: x509.Certificate, now: dt.datetime | None = None) -> str:
        """Check a presented client certificate was issued by this CA, is current and names a node."""
        now = now or _now()
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError) as exc:
            raise AuthError("client certificate was not issued by this cluster's CA") from exc
        except Exception as exc:  # InvalidSignature
            raise AuthError("client certificate signature does not verify against the CA") from exc
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise AuthError("client certificate has expired", hint="re-join the node with a new token")
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            raise AuthError("certificate is not a client certificate (no ClientAuth usage)")
        node = node_of(cert)
        if node is None:
            raise AuthError("client certificate does not name a node (CN system:node:<name>, O system:nodes)")
        return node


def san_list(addresses: Iterable[str]) -> list[x509.GeneralName]:
    """IP addresses become IP SANs, anything else a DNS SAN; order kept, duplicates dropped."""
    out: list[x509.GeneralName] = []
    seen: set[str] = set()
    for raw in addresses:
        addr = raw.strip()
        if not addr or addr in seen:
            continue
        seen.add(addr)
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(addr)))
        except ValueError:
            out.append(x509.DNSName(addr))
    return out


def sans_of(cert: x509.Certificate) -> set[str]:
    """The SAN set of a certificate as strings (to decide whether to re-issue)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName)
    )


def make_csr(key: ec.EllipticCurvePrivateKey, node: str) -> bytes:
    """DER CSR as an edge sends it (used by `kedge join` and tests)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODE_ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, NODE_CN_PREFIX + node),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def wanted_sans(addresses: Iterable[str]) -> set[str]:
    """The SAN set `issue_serving(addresses)` would produce, normalized like `sans_of`."""
    out: set[str] = set()
    for general in san_list(addresses):
        out.add(str(general.value))
    return out
