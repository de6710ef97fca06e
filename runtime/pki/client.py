"""The joiner's side of certificate bootstrap (what `keadm join`/edgecore do against :10002).

    ca_der = await fetch_ca("https://cloud:10002")            # unauthenticated download …
    jwt = tokens.check_ca(token, ca_der)                       # … pinned by the token's hash
    key, cert_der = await request_certificate(url, ca_der, node, jwt=jwt)
    key, cert_der = await request_certificate(url, ca_der, node, current=(cert, key))  # renewal

Refusals raise AuthError (401), Conflict (409) or KedgeError carrying the server's text, which names
the reason (expired, revoked, subject mismatch, name taken).
"""

from __future__ import annotations

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from runtime.errors import AuthError, Conflict, KedgeError, Unreachable
from runtime.pki import certs, tls

TIMEOUT = 15.0


async def fetch_ca(url: str, http_timeout: float = TIMEOUT) -> bytes:
    """GET <url>/ca.crt without verifying the server (the caller pins the result by hash)."""
    try:
        async with httpx.AsyncClient(verify=tls.client_context(None), timeout=http_timeout) as c:
            resp = await c.get(url.rstrip("/") + "/ca.crt")
    except httpx.TransportError as exc:
        raise Unreachable(
            f"certificate server {url}: {exc}", hint="check the cloud address and port 10002"
        ) from exc
    if resp.status_code != 200:
        raise KedgeError(f"certificate server {url}/ca.crt answered {resp.status_code}: {resp.text[:200]}")
    return resp.content


async def node_taken(url: str, ca_der: bytes, node: str, http_timeout: float = TIMEOUT) -> bool:
    """GET /node/<name>: True when a Node of that name already exists in the cluster."""
    async with httpx.AsyncClient(verify=tls.client_context(ca_der), timeout=http_timeout) as c:
        resp = await c.get(f"{url.rstrip('/')}/node/{node}")
    if resp.status_code not in (200, 404):
        raise KedgeError(
            f"certificate server {url}/node/{node} answered {resp.status_code}: {resp.text[:200]}"
        )
    return resp.status_code == 200


async def request_certificate(
    url: str,
    ca_der: bytes,
    node: str,
    *,
    jwt: str | None = None,
    current: tuple[bytes, bytes] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    http_timeout: float = TIMEOUT,
) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """New key (unless given) and its certificate, authenticated by a token or the current cert."""
    if jwt is None and current is None:
        raise ValueError("request_certificate needs a token (jwt) or the current (cert, key)")
    key = key or certs.new_key()
    cert_der, key_der = current if current is not None else (None, None)
    ctx = tls.client_context(ca_der, cert_der, key_der)
    headers = {"NodeName": node, "Content-Type": "application/octet-stream"}
    if jwt is not None and current is None:
        headers["Authorization"] = f"Bearer {jwt}"
    try:
        async with httpx.AsyncClient(verify=ctx, timeout=http_timeout) as c:
            resp = await c.request("GET", url.rstrip("/") + "/edge.crt", headers=headers,
                                   content=certs.make_csr(key, node))  # fmt: skip
    except httpx.TransportError as exc:
        raise Unreachable(
            f"certificate server {url}: {exc}", hint="check the cloud address and port 10002"
        ) from exc
    if resp.status_code == 200:
        return key, resp.content
    reason = resp.text.strip()[:300]
    if resp.status_code == 401:
        raise AuthError(
            f"{url}/edge.crt refused node {node}: {reason}", hint="create a new token: kedge token create"
        )
    if resp.status_code == 409:
        raise Conflict(f"{url}/edge.crt refused node {node}: {reason}",
                       hint=f"on the cloud: kedge token create --node {node}")  # fmt: skip
    raise KedgeError(f"{url}/edge.crt answered {resp.status_code} for node {node}: {reason}")
