"""The edge's one client of the cloud's certificate server (:10002), what `keadm join`/edgecore do.

    server = CertServer(host, port)                              # no trust yet: only for /ca.crt
    ca_der = server.fetch_ca()                                   # the caller pins it by the token's hash
    server = CertServer(host, port, ca_pem=pem_of(ca_der))
    status, date = server.node(name)                             # 200 taken, 404 free; the cloud's Date
    cert_pem = server.request_certificate(node, csr, jwt=jwt)    # first join: the join token
    renew = CertServer(host, port, ca_file=ca, identity=(cert, key))
    cert_pem = renew.request_certificate(node, csr)              # renewal: the node's own certificate

Blocking (http.client over ssl): `kedge join` runs it on a thread, the runtime's renewal too; stdlib only,
so the edge process never loads an HTTP client library or ``cryptography`` for it. A refusal (401, 403,
409) is an AuthError carrying the server's text, which names the reason (expired, revoked, subject
mismatch, name taken); another status a KedgeError; a connection that fails raises OSError (ssl errors
included), which the caller words (join: Unreachable with its hint; renewal: retried).
"""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass

from runtime.errors import AuthError, KedgeError
from runtime.pki.tls import verify_context

TIMEOUT = 10.0


def pem_of(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]  # names lower-cased

    @property
    def text(self) -> str:
        return self.body[:300].decode(errors="replace").strip()


@dataclass(frozen=True)
class CertServer:
    host: str
    port: int
    ca_pem: str | None = None  # trust: the pinned CA (PEM text) …
    ca_file: str | None = None  # … or the CA file; neither: no verification (only to fetch /ca.crt)
    identity: tuple[str, str] | None = None  # (certificate file, key file): renewal
    timeout: float = TIMEOUT

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def context(self) -> ssl.SSLContext:
        ctx = verify_context(self.ca_pem, cafile=self.ca_file)
        if self.identity is not None:
            ctx.load_cert_chain(*self.identity)
        return ctx

    def call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> Answer:
        """One HTTPS request. Raises OSError (ssl errors included) when no answer comes."""
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context())
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Answer(resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()})
        finally:
            conn.close()

    def fetch_ca(self) -> bytes:
        """GET /ca.crt (DER). Unverified unless a CA was given: the caller checks the token's hash."""
        got = self.call("GET", "/ca.crt")
        if got.status != 200:
            raise KedgeError(
                f"{self.url}/ca.crt answered {got.status}: {got.body[:200].decode(errors='replace')}"
            )
        return got.body

    def node(self, name: str) -> tuple[int, str]:
        """GET /node/<name>: (status — 200 the name is taken, 404 free —, the answer's Date header)."""
        got = self.call("GET", f"/node/{name}")
        return got.status, got.headers.get("date", "")

    def request_certificate(self, node: str, csr: bytes, *, jwt: str | None = None) -> bytes:
        """GET /edge.crt with a CSR, authenticated by the join token (``jwt``) or by ``identity``."""
        headers = {"NodeName": node, "Content-Type": "application/octet-stream"}
        if jwt is not None:
            headers["Authorization"] = f"Bearer {jwt}"
        got = self.call("GET", "/edge.crt", headers=headers, body=csr)
        if got.status in (401, 403, 409):
            hint = (
                "the cloud no longer accepts this node's certificate: join again with a fresh token"
                if jwt is None
                else "create a fresh token (`kedge token create`), or pick another --node-name"
            )
            raise AuthError(f"{self.url}/edge.crt refused node {node} ({got.status}): {got.text}", hint=hint)
        if got.status != 200:
            raise KedgeError(f"{self.url}/edge.crt answered {got.status} for node {node}: {got.text}")
        return got.body
