"""The node's certificate on disk, with the facts the runtime reads of it recorded beside it.

    save_certificate(files, cert)  →  node.crt (PEM, 0600) and node.crt.json {node, notAfter, sha256}
    certificate_facts(files)       →  CertFacts(node, not_after) or None, read from node.crt.json
    not_after(files)               →  its notAfter or None (the runtime's and `kedge status`'s figure)

Why a record: the running edge needs the certificate's expiry (renewal, `kedge status`) and `kedge join`'s
preflight its node name, but the edge never imports ``cryptography`` (design.md §3's memory budget) and the
stdlib has no public certificate decoder. Whoever writes the certificate (join, renewal) has it decoded
already, so it records what is needed then. The record names the certificate's sha256: a certificate
written by other means (one that predates the record, or replaced by hand) is decoded once, with
``cryptography``, and its record written — so the record never speaks for another certificate.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from runtime.edge.layout import EdgeFiles
from runtime.fsutil import write_atomic

NODE_CN = "system:node:"


@dataclass(frozen=True)
class CertFacts:
    node: str | None  # from the subject's CN system:node:<name>
    not_after: float  # seconds since the epoch


def _facts_of(cert: Any) -> CertFacts:
    from cryptography.x509.oid import NameOID

    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    node = next((cn[len(NODE_CN) :] for cn in cns if cn.startswith(NODE_CN)), None)
    return CertFacts(node, cert.not_valid_after_utc.timestamp())


def _record(files: EdgeFiles, facts: CertFacts, pem: bytes) -> None:
    doc = {"node": facts.node, "notAfter": facts.not_after, "sha256": hashlib.sha256(pem).hexdigest()}
    write_atomic(files.cert_facts, json.dumps(doc), mode=0o600)


def save_certificate(files: EdgeFiles, cert: Any) -> CertFacts:
    """Write ``cert`` (a cryptography x509.Certificate) as node.crt, then its record."""
    from runtime.pki import certs

    pem = certs.cert_pem(cert)
    write_atomic(files.cert, pem, mode=0o600)
    facts = _facts_of(cert)
    _record(files, facts, pem)
    return facts


def certificate_facts(files: EdgeFiles) -> CertFacts | None:
    """The recorded facts of node.crt; None without a readable certificate."""
    try:
        pem = files.cert.read_bytes()
    except OSError:
        return None
    try:
        doc = json.loads(files.cert_facts.read_text())
        if doc.get("sha256") == hashlib.sha256(pem).hexdigest():
            return CertFacts(doc.get("node"), float(doc["notAfter"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return _decode(files, pem)  # no record, or one of another certificate


def not_after(files: EdgeFiles) -> float | None:
    """node.crt's expiry (seconds since the epoch), as `kedge status` shows it; None without one."""
    facts = certificate_facts(files)
    return None if facts is None else facts.not_after


def _decode(files: EdgeFiles, pem: bytes) -> CertFacts | None:
    from runtime.errors import KedgeError
    from runtime.pki import certs  # cryptography: only for a certificate written without its record

    try:
        facts = _facts_of(certs.load_cert(pem))
    except (ValueError, KedgeError):
        return None
    with contextlib.suppress(OSError):  # a read-only pki directory: the facts, unrecorded
        _record(files, facts, pem)
    return facts
