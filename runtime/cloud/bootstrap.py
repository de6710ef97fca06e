"""The certificate bootstrap server (HTTPS :10002), KubeEdge-compatible (design.md §4).

    GET /ca.crt         the CA certificate, DER
    GET /edge.crt       headers NodeName and either `Authorization: Bearer <jwt>` or a current client
                        certificate (renewal); body = DER CSR → signed client certificate, DER
    GET /node/<name>    200 "Node found" / 404 "Node not found" (join's "is the name taken?" check)

Refusals are plain-text bodies naming the reason, because the joiner prints them to a human:
401 missing, malformed, expired, revoked or badly signed token and certificate problems (an
authentication failure is 401, as cloudcore answers), 400 a missing NodeName header or a bad CSR
(including a subject that is not the authenticated node), 409 when a token that was not made
for an existing node (one that has a recorded key hash) tries to take that node over.
"""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from runtime.cloud.pki_store import PKIStore
from runtime.errors import AuthError, KedgeError, Refused
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import NODES
from runtime.listen import CLOUD_HINT, AddressInUse, start_site
from runtime.pki import ANN_KEY_HASH, certs, tokens

log = logging.getLogger("kedge.cloud.bootstrap")
MAX_CSR_BYTES = 64 * 1024
EXT_KEY_USAGE_SERVER_AUTH, EXT_KEY_USAGE_CLIENT_AUTH = 1, 2  # Go's x509.ExtKeyUsage numbers


class Bootstrap:
    """Handlers bound to one CA, token store and API client (shared with the rest of the cloud)."""

    def __init__(
        self,
        ca: certs.CA,
        store: PKIStore,
        client: KubeClient,
        *,
        cert_days: int = certs.LEAF_DAYS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.ca = ca
        self.store = store
        self.client = client
        self.cert_days = cert_days
        self.requests = Counter(
            "kedge_bootstrap_requests",
            "Certificate bootstrap requests by endpoint and HTTP status",
            ["endpoint", "code"],
            registry=registry,
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_CSR_BYTES)
        app.router.add_get("/ca.crt", self.get_ca)
        app.router.add_get("/edge.crt", self.get_edge_cert)
        app.router.add_post("/edge.crt", self.get_edge_cert)  # lenient: some clients POST a body
        app.router.add_get("/node/{name}", self.get_node)
        return app

    def _count(self, endpoint: str, code: int) -> None:
        self.requests.labels(endpoint, str(code)).inc()

    async def get_ca(self, request: web.Request) -> web.Response:
        self._count("ca.crt", 200)
        return web.Response(body=self.ca.cert_der, content_type="application/octet-stream")

    async def get_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            await self.client.get(NODES, name)
        except KubeNotFound:
            self._count("node", 404)
            return web.Response(status=404, text="Node not found")
        except KedgeError as exc:
            log.warning("node lookup %s failed: %s", name, exc)
            self._count("node", 500)
            return web.Response(status=500, text="Failed to query node information")
        self._count("node", 200)
        return web.Response(status=200, text="Node found")

    async def get_edge_cert(self, request: web.Request) -> web.Response:
        node = request.headers.get("NodeName", "").strip()
        try:
            if not node:
                raise Refused("NodeName header is required", status=400)
            renewing, existing = await self._authenticate(request, node)
            csr = await request.read()
            if not csr:
                raise Refused("request body must be the DER certificate signing request", status=400)
            try:
                cert = self.ca.sign_node_csr(csr, node, self.cert_days, usages=_usages(request))
            except certs.CSRRejected as exc:
                raise Refused(str(exc), status=400) from exc
            if existing is not None:  # a new Node gets its key hash when the hub registers it
                await self._record_key(node, cert)
        except Refused as exc:
            log.info("refused certificate for node %s: %s (%d)", node or "?", exc.message, exc.status)
            self._count("edge.crt", exc.status)
            return web.Response(status=exc.status, text=exc.message)
        log.info("signed certificate for node %s (%s)", node, "renewal" if renewing else "join")
        self._count("edge.crt", 200)
        return web.Response(body=certs.cert_der(cert), content_type="application/octet-stream")

    async def _authenticate(self, request: web.Request, node: str) -> tuple[bool, dict[str, Any] | None]:
        """A current client certificate for the same node, or a valid token.

        Returns (renewal?, the Node's annotations or None when the Node does not exist)."""
        peer = _peer_cert(request)
        if peer is not None:
            try:
                named = self.ca.verify_client(peer)
            except AuthError as exc:
                raise Refused(f"failed to verify the certificate for node {node}: {exc}", status=401) from exc
            if named != node:
                raise Refused(f"certificate is for node {named}, request is for node {node}", status=401)
            return True, await self._node_annotations(node)
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if not header:
            raise Refused(
                "token validation failure: no Authorization header (expected Bearer <token>)", status=401
            )
        if scheme.lower() != "bearer" or not value.strip():
            raise Refused("malformed token: Authorization must be `Bearer <token>`", status=401)
        jwt = value.strip()
        try:
            if jwt.count(".") == 3:  # the whole `<ca hash>.<jwt>` join token: accept it too
                jwt = tokens.split_token(jwt)[1]
            claims = await self.store.verify_token(jwt)
        except tokens.TokenError as exc:
            raise Refused(f"token validation failure: {exc}", status=401) from exc
        if claims.node and claims.node != node:
            raise Refused(f"token {claims.jti} was created for node {claims.node}, not {node}", status=401)
        existing = await self._node_annotations(node)
        if not claims.node:
            if existing is not None and existing.get(ANN_KEY_HASH):
                raise Refused(
                    f"node name taken: node {node} already exists with a registered key; a token is no "
                    f"licence to take it over — use `kedge token create --node {node}` to re-join it",
                    status=409,
                )
        return False, existing

    async def _node_annotations(self, node: str) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(NODES, node)
        except KubeNotFound:
            return None
        return dict((obj.get("metadata") or {}).get("annotations") or {})

    async def _record_key(self, node: str, cert: Any) -> None:
        """Record the new key hash on the existing Node."""
        patch = {"metadata": {"annotations": {ANN_KEY_HASH: certs.key_hash(cert)}}}
        try:
            await self.client.patch(NODES, node, patch, type="merge")
        except KubeNotFound:
            pass
        except KedgeError as exc:  # the certificate is still good; the hub will record it later
            log.warning("could not record key hash on node %s: %s", node, exc)


def _usages(request: web.Request) -> tuple[str, ...]:
    """KubeEdge's optional ExtKeyUsages header: a JSON list of Go x509.ExtKeyUsage numbers."""
    raw = request.headers.get("ExtKeyUsages", "").strip()
    if not raw:
        return ("client",)
    try:
        values = json.loads(raw)
    except ValueError as exc:
        raise Refused(f"ExtKeyUsages header is not a JSON list: {raw[:40]}", status=400) from exc
    if not isinstance(values, list) or not values:
        raise Refused("ExtKeyUsages header must be a non-empty JSON list", status=400)
    out = []
    for v in values:
        if v == EXT_KEY_USAGE_CLIENT_AUTH:
            out.append("client")
        elif v == EXT_KEY_USAGE_SERVER_AUTH:
            out.append("server")
        else:
            raise Refused(
                f"ExtKeyUsages: usage {v!r} is not allowed (only 1 ServerAuth, 2 ClientAuth)", status=400
            )
    return tuple(dict.fromkeys(out))


def _peer_cert(request: web.Request) -> Any:
    transport = request.transport
    obj: ssl.SSLObject | None = transport.get_extra_info("ssl_object") if transport else None
    der = obj.getpeercert(binary_form=True) if obj is not None else None
    return certs.load_cert(der) if der else None


async def serve(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext
) -> tuple[web.AppRunner, int]:
    """Start the HTTPS site; returns the runner (for cleanup) and the port actually bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        bound = await start_site(
            runner, host, port, what="kedge certificate server", ssl_context=ssl_context, backlog=1024,
            hint=CLOUD_HINT,
        )  # fmt: skip
    except AddressInUse:
        await runner.cleanup()
        raise
    return runner, bound
