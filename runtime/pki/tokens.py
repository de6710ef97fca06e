"""Join tokens in KubeEdge's format: `<sha256 hex of CA DER>.<JWT>` (design.md §4).

The first part lets a joiner check the CA it downloads (no trust on first use); the JWT is the
bearer credential for `GET /edge.crt`. kedge JWTs are HS256 with claims `exp`, `jti` and optionally
`description` and `node`. The HMAC key is a random secret of its own (never the CA key, unlike
KubeEdge), so rotating tokens never touches the CA. HS256 is small enough to do with stdlib hmac —
no JWT dependency. Pure functions only: storage and revocation live in runtime.cloud.pki_store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from runtime.errors import AuthError

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_TTL = 24 * 3600


class TokenError(AuthError):
    """A join token was refused; `reason` is one of malformed, signature, expired, revoked, unknown, ca."""

    def __init__(self, reason: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or "create a new one with `kedge token create`")
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    jti: str
    exp: int
    description: str = ""
    node: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exp": self.exp, "jti": self.jti}
        if self.description:
            out["description"] = self.description
        if self.node:
            out["node"] = self.node
        return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_signing_key() -> bytes:
    return secrets.token_bytes(32)


def new_token_id() -> str:
    return secrets.token_hex(8)


def sign_jwt(claims: dict[str, Any], key: bytes) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, f"{header}.{payload}".encode("ascii"), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def unverified_claims(jwt: str) -> dict[str, Any]:
    """The JWT's payload without checking the signature (to find the token id before verifying)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", "malformed token: a JWT has three dot-separated parts")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        _unb64(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError("malformed", "malformed token: JWT parts are not base64url JSON") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("malformed", "malformed token: JWT header and payload must be JSON objects")
    if header.get("alg") != "HS256":
        raise TokenError("malformed", f"malformed token: algorithm {header.get('alg')!r} is not HS256")
    return claims


def verify_jwt(jwt: str, key: bytes, now: float | None = None) -> Claims:
    """Check format, HS256 signature and expiry; revocation is the store's job."""
    raw = unverified_claims(jwt)
    head, payload, sig = jwt.split(".")
    want = hmac.new(key, f"{head}.{payload}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(want, _unb64(sig)):
        raise TokenError("signature", "invalid token: signature does not verify (not issued by this cluster)")
    exp, jti = raw.get("exp"), raw.get("jti")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenError("malformed", "malformed token: no numeric exp claim")
    if not isinstance(jti, str) or not jti:
        raise TokenError("malformed", "malformed token: no jti claim (not a kedge token)")
    if (now if now is not None else time.time()) >= exp:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        raise TokenError("expired", f"token {jti} expired at {when}")
    return Claims(
        jti=jti,
        exp=int(exp),
        description=str(raw.get("description") or ""),
        node=str(raw.get("node") or ""),
    )


def make_token(
    ca_cert_der: bytes,
    key: bytes,
    *,
    ttl: float = DEFAULT_TTL,
    description: str = "",
    node: str = "",
    token_id: str | None = None,
    now: float | None = None,
) -> tuple[Claims, str]:
    """A new join token string and its claims."""
    claims = Claims(
        jti=token_id or new_token_id(),
        exp=int((now if now is not None else time.time()) + ttl),
        description=description,
        node=node,
    )
    jwt = sign_jwt(claims.to_dict(), key)
    return claims, f"{hashlib.sha256(ca_cert_der).hexdigest()}.{jwt}"


def split_token(token: str) -> tuple[str, str]:
    """`<ca hash>.<jwt>` → (ca hash, jwt); works for kedge and KubeEdge tokens alike."""
    token = token.strip()
    parts = token.split(".")
    if len(parts) != 4 or not _HASH_RE.match(parts[0]):
        raise TokenError(
            "malformed",
            "malformed token: expected <sha256 hex of the CA>.<JWT> (4 dot-separated parts)",
            hint="copy the whole token printed by `kedge token create` or `keadm gettoken`",
        )
    return parts[0], ".".join(parts[1:])


def check_ca(token: str, ca_cert_der: bytes) -> str:
    """Verify the downloaded CA against the token's hash; return the JWT to use as bearer."""
    want, jwt = split_token(token)
    got = hashlib.sha256(ca_cert_der).hexdigest()
    if not hmac.compare_digest(want, got):
        raise TokenError(
            "ca",
            f"the cloud's CA (sha256 {got[:16]}…) does not match the token's ({want[:16]}…)",
            hint="wrong cloud address, or a man in the middle; check --cloud and the token",
        )
    return jwt
