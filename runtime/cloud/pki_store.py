"""Where the CA, the token signing key, join tokens and the serving certificate live: Secrets (design.md §5).

Everything is in namespace `kubeedge`, so every cloud replica and every `kedge init`/`kedge token`
run sees the same state. Creation races are settled by the API server: create, and on 409
AlreadyExists re-read and use the winner's object — so two concurrent inits end with ONE CA, and
nothing ever uses a CA that is not persisted (we return what we read back or what create accepted).

The store talks to Kubernetes through runtime.kube's dict-level KubeClient.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.errors import Conflict, NotFound, UsageError
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import SECRETS
from runtime.pki import certs, tokens

NAMESPACE = "kubeedge"
CA_SECRET = "kedge-ca"
SIGNING_SECRET = "kedge-token-signing-key"
SERVING_SECRET = "kedge-cloudhub-serving"
TOKEN_PREFIX = "kedge-token-"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_KIND = "kedge.io/secret-kind"
LABEL_TOKEN_ID = "kedge.io/token-id"
ANN_EXPIRES = "kedge.io/expires"
ANN_DESCRIPTION = "kedge.io/description"
ANN_NODE = "kedge.io/node"
ANN_REVOKED = "kedge.io/revoked"
TOKEN_SELECTOR = f"{LABEL_KIND}=join-token"
REISSUE_BEFORE = dt.timedelta(days=30)
_NODE_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def secret_data(secret: dict[str, Any], key: str) -> bytes:
    value = (secret.get("data") or {}).get(key)
    if not value:
        name = secret.get("metadata", {}).get("name", "?")
        raise NotFound(
            f"Secret {NAMESPACE}/{name} has no key {key!r}", hint="delete it and re-run kedge init"
        )
    return base64.b64decode(value)


def _secret(
    name: str,
    kind: str,
    data: dict[str, bytes],
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {LABEL_PART_OF: "kedge", LABEL_KIND: kind, **(labels or {})},
    }
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "data": {k: _b64(v) for k, v in data.items()},
    }


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    expires: float
    description: str
    node: str
    revoked: bool

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        left = max(0, int(self.expires - (now if now is not None else time.time())))
        return {
            "id": self.id,
            "expires": _iso(self.expires),
            "remaining": f"{left // 3600}h{left % 3600 // 60:02d}m" if not self.revoked else "revoked",
            "remainingSeconds": left,
            "description": self.description,
            "node": self.node,
            "revoked": self.revoked,
        }


def _token_info(secret: dict[str, Any]) -> TokenInfo | None:
    meta = secret.get("metadata") or {}
    ann = meta.get("annotations") or {}
    tid = (meta.get("labels") or {}).get(LABEL_TOKEN_ID)
    try:
        expires = _parse_iso(ann[ANN_EXPIRES])
    except (KeyError, ValueError):
        return None
    if not tid:
        return None
    return TokenInfo(
        tid, expires, ann.get(ANN_DESCRIPTION, ""), ann.get(ANN_NODE, ""), ann.get(ANN_REVOKED) == "true"
    )


class PKIStore:
    """CA, signing key, tokens and serving certificate, kept in Secrets through a KubeClient."""

    def __init__(
        self, client: KubeClient, namespace: str = NAMESPACE, key_cache_seconds: float = 30.0
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.key_cache_seconds = key_cache_seconds
        self._key: tuple[bytes, float] | None = None  # (signing key, monotonic time read)

    async def _get(self, name: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(SECRETS, name, namespace=self.namespace)
        except KubeNotFound:
            return None

    async def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.create(SECRETS, body, namespace=self.namespace)

    async def _replace(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self.client.replace(SECRETS, body, namespace=self.namespace)

    async def _delete(self, name: str) -> bool:
        try:
            await self.client.delete(SECRETS, name, namespace=self.namespace)
        except KubeNotFound:
            return False
        return True

    async def _create_or_read(self, name: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Read; if absent create; if the create loses a race (409) read the winner's copy."""
        existing = await self._get(name)
        if existing is not None:
            return existing
        try:
            return await self._create(make())
        except Conflict:
            winner = await self._get(name)
            if winner is None:  # created and deleted in between: give up loudly, never guess
                raise Conflict(
                    f"Secret {self.namespace}/{name} vanished while being created; retry"
                ) from None
            return winner

    # ------------------------------------------------------------------ CA and signing key

    async def load_ca(self) -> certs.CA | None:
        secret = await self._get(CA_SECRET)
        if secret is None:
            return None
        return certs.CA.from_der(secret_data(secret, "ca.crt"), secret_data(secret, "ca.key"))

    async def ensure_ca(self) -> certs.CA:
        """The cluster CA: the persisted one, or a new one that won the create race."""

        def make() -> dict[str, Any]:
            ca = certs.CA.generate()
            return _secret(
                CA_SECRET, "ca", {"ca.crt": ca.cert_der, "ca.key": ca.key_der}, namespace=self.namespace
            )

        secret = await self._create_or_read(CA_SECRET, make)
        return certs.CA.from_der(secret_data(secret, "ca.crt"), secret_data(secret, "ca.key"))

    async def signing_key(self, create: bool = True) -> bytes | None:
        if not create:
            secret = await self._get(SIGNING_SECRET)
            return None if secret is None else secret_data(secret, "key")
        secret = await self._create_or_read(
            SIGNING_SECRET,
            lambda: _secret(
                SIGNING_SECRET,
                "token-signing-key",
                {"key": tokens.new_signing_key()},
                namespace=self.namespace,
            ),
        )
        return secret_data(secret, "key")

    # ------------------------------------------------------------------ tokens

    async def create_token(
        self,
        *,
        ttl: float = tokens.DEFAULT_TTL,
        description: str = "",
        node: str = "",
        now: float | None = None,
    ) -> tuple[TokenInfo, str]:
        """Persist the token's record first, then hand out the string: an unrecorded token never verifies."""
        if node and not _NODE_NAME.match(node):
            raise UsageError(f"--node {node!r}: not a valid node name (lower-case DNS-1123 subdomain)")
        ca = await self.ensure_ca()
        key = await self.signing_key()
        assert key is not None
        claims, token = tokens.make_token(
            ca.cert_der, key, ttl=ttl, description=description, node=node, now=now
        )
        ann = {ANN_EXPIRES: _iso(claims.exp)}
        if description:
            ann[ANN_DESCRIPTION] = description
        if node:
            ann[ANN_NODE] = node
        await self._create(
            _secret(
                TOKEN_PREFIX + claims.jti,
                "join-token",
                {"id": claims.jti.encode()},
                labels={LABEL_TOKEN_ID: claims.jti},
                annotations=ann,
                namespace=self.namespace,
            )
        )
        await self.gc_tokens(now)
        return TokenInfo(claims.jti, claims.exp, description, node, False), token

    async def list_tokens(self) -> list[TokenInfo]:
        items = (await self.client.list(SECRETS, namespace=self.namespace, labels=TOKEN_SELECTOR)).items
        infos = [i for i in (_token_info(s) for s in items) if i is not None]
        return sorted(infos, key=lambda t: t.expires)

    async def revoke_token(self, token_id: str) -> TokenInfo:
        """Mark revoked (kept until it would have expired, so the refusal can say "revoked")."""
        name = TOKEN_PREFIX + token_id
        for _ in range(5):
            secret = await self._get(name)
            info = _token_info(secret) if secret is not None else None
            if secret is None or info is None:
                raise NotFound(
                    f"token {token_id} not found in namespace {self.namespace}",
                    hint="`kedge token list` shows the ids",
                )
            if info.revoked:
                return info
            secret.setdefault("metadata", {}).setdefault("annotations", {})[ANN_REVOKED] = "true"
            try:
                await self._replace(secret)
            except Conflict:
                continue
            return TokenInfo(info.id, info.expires, info.description, info.node, True)
        raise Conflict(f"token {token_id}: Secret kept changing while revoking; retry")

    async def gc_tokens(self, now: float | None = None) -> list[str]:
        """Delete the records of expired tokens (a revoked one goes when it would have expired)."""
        now = now if now is not None else time.time()
        gone = []
        for info in await self.list_tokens():
            if info.expires <= now:
                await self._delete(TOKEN_PREFIX + info.id)
                gone.append(info.id)
        return gone

    async def _cached_signing_key(self) -> bytes | None:
        """The signing key, re-read at most every `key_cache_seconds` (a burst of joins should not
        read the same Secret each time; a purge + re-init is picked up within that window)."""
        now = time.monotonic()
        if self._key is not None and now - self._key[1] < self.key_cache_seconds:
            return self._key[0]
        key = await self.signing_key(create=False)
        self._key = (key, now) if key is not None else None
        return key

    async def verify_token(self, jwt: str, now: float | None = None) -> tokens.Claims:
        """Signature, expiry, then revocation; raises TokenError naming the reason."""
        key = await self._cached_signing_key()
        if key is None:
            raise tokens.TokenError("unknown", "no join tokens exist in this cluster")
        claims = tokens.verify_jwt(jwt, key, now)
        secret = await self._get(TOKEN_PREFIX + claims.jti)
        info = _token_info(secret) if secret is not None else None
        if info is None:
            raise tokens.TokenError("revoked", f"token {claims.jti} is revoked (no longer recorded)")
        if info.revoked:
            raise tokens.TokenError("revoked", f"token {claims.jti} was revoked")
        return claims

    # ------------------------------------------------------------------ serving certificate

    async def ensure_serving(
        self, ca: certs.CA, addresses: list[str], days: int = certs.LEAF_DAYS, now: dt.datetime | None = None
    ) -> tuple[bytes, bytes]:
        """(cert DER, key DER) of the CloudHub serving certificate, re-issued when fewer than 30 days
        remain or the advertise addresses changed; shared by every replica through its Secret."""
        want = certs.wanted_sans(addresses)
        for _ in range(5):
            secret = await self._get(SERVING_SECRET)
            if secret is not None:
                cert = certs.load_cert(secret_data(secret, "tls.crt"))
                fresh = certs.remaining(cert, now) >= REISSUE_BEFORE
                issued_by_ca = cert.issuer == ca.cert.subject
                try:
                    if issued_by_ca:
                        cert.verify_directly_issued_by(ca.cert)
                except Exception:
                    issued_by_ca = False
                if fresh and issued_by_ca and certs.sans_of(cert) == want:
                    return secret_data(secret, "tls.crt"), secret_data(secret, "tls.key")
            new_cert, new_key = ca.issue_serving(addresses, days, now)
            body = _secret(
                SERVING_SECRET,
                "serving-cert",
                {"tls.crt": certs.cert_der(new_cert), "tls.key": certs.key_der(new_key)},
                namespace=self.namespace,
            )
            try:
                if secret is None:
                    await self._create(body)
                else:
                    body["metadata"]["resourceVersion"] = secret["metadata"].get("resourceVersion")
                    await self._replace(body)
            except Conflict:
                continue  # another replica re-issued first: use theirs if it fits
            return certs.cert_der(new_cert), certs.key_der(new_key)
        raise Conflict(f"Secret {self.namespace}/{SERVING_SECRET} kept changing; retry")
