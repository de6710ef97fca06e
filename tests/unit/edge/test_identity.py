"""The node certificate is written with its facts (node, notAfter), so the edge reads them without
cryptography (design.md §3); a certificate written without them is decoded once and recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from runtime.edge.identity import certificate_facts, save_certificate
from runtime.edge.layout import EdgeFiles
from runtime.pki import certs

READ = """
import json, sys
from runtime.edge.identity import certificate_facts
from runtime.edge.layout import EdgeFiles
facts = certificate_facts(EdgeFiles.of(sys.argv[1]))
print(json.dumps({"node": facts.node, "notAfter": facts.not_after,
                  "cryptography": any(m.startswith("cryptography") for m in sys.modules)}))
"""


def _node_cert(ca: certs.CA, node: str, days: int = 365) -> x509.Certificate:
    return ca.sign_node_csr(certs.make_csr(certs.new_key(), node), node, days=days)


def _read_in_fresh_process(root: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", READ, str(root)], capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


def test_facts_are_read_without_cryptography(tmp_path: Path) -> None:
    files = EdgeFiles.of(tmp_path)
    cert = _node_cert(certs.CA.generate(), "edge-1")
    saved = save_certificate(files, cert)
    assert files.cert.read_bytes() == certs.cert_pem(cert)
    assert files.cert.stat().st_mode & 0o777 == 0o600
    assert saved.node == "edge-1"
    assert saved.not_after == certs.not_after(cert).timestamp()
    read = _read_in_fresh_process(tmp_path)
    assert read == {"node": "edge-1", "notAfter": saved.not_after, "cryptography": False}


def test_a_certificate_without_its_record_is_decoded_once_and_recorded(tmp_path: Path) -> None:
    files = EdgeFiles.of(tmp_path)
    ca = certs.CA.generate()
    save_certificate(files, _node_cert(ca, "edge-1"))
    other = _node_cert(ca, "edge-2", days=30)
    files.cert.write_bytes(certs.cert_pem(other))  # replaced by other means: the record speaks of the old one
    facts = certificate_facts(files)
    assert facts is not None and facts.node == "edge-2"
    assert facts.not_after == certs.not_after(other).timestamp()
    assert _read_in_fresh_process(tmp_path)["cryptography"] is False  # recorded now
    files.cert_facts.unlink()  # written before records existed
    assert certificate_facts(files) == facts and files.cert_facts.exists()


def test_no_or_broken_certificate_has_no_facts(tmp_path: Path) -> None:
    files = EdgeFiles.of(tmp_path)
    assert certificate_facts(files) is None
    files.cert.parent.mkdir(parents=True)
    files.cert.write_bytes(b"not a certificate")
    assert certificate_facts(files) is None
