"""Bearer-token authentication: the admin token, and service-account JWTs this server signed.

Service-account tokens are ES256 JWTs shaped like kube-apiserver's (iss, sub, aud, exp, iat, nbf and the
`kubernetes.io` claim naming the namespace, service account and bound pod). A token authenticates while
unexpired and while the objects it is bound to still exist with the same uid; `authenticate` names its
User (name, uid, groups, extra as kube-apiserver's service-account authenticator does) — for requests
and for TokenReview alike. Authorization is not enforced: every authenticated user may do everything
(RBAC objects are stored, not evaluated).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from runtime.apiserver.registry.storage import Store
from runtime.fsutil import write_atomic

ISSUER = "https://kubernetes.default.svc.cluster.local"
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version"})  # served without credentials
Obj = dict[str, Any]


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_admin_token(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    write_atomic(path, token + "\n")
    return token


class TokenSigner:
    def __init__(self, key_file: Path) -> None:
        if key_file.exists():
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            write_atomic(
                key_file,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
        self._key = key
        self._pub = key.public_key()
        der = self._pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import hashlib

        self.kid = _b64(hashlib.sha256(der).digest())
        self._verified: dict[str, Obj] = {}

    def sign(self, claims: Obj) -> str:
        header = {"alg": "ES256", "kid": self.kid}
        signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str) -> Obj | None:
        """Claims of a valid, unexpired token this signer issued, else None."""
        claims = self._verified.get(token)
        if claims is None:
            try:
                head, body, sig = token.split(".")
                raw = _unb64(sig)
                if len(raw) != 64:
                    return None
                der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
                self._pub.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
                claims = orjson.loads(_unb64(body))
            except (ValueError, InvalidSignature, orjson.JSONDecodeError):
                return None
            if not isinstance(claims, dict):
                return None
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = claims
        now = time.time()
        if claims.get("exp", 0) <= now or claims.get("nbf", 0) > now + 60:
            return None
        return claims

    def issue(
        self, namespace: str, sa: Obj, audiences: list[str], expiration: int, pod: Obj | None
    ) -> tuple[str, int]:
        now = int(time.time())
        exp = now + expiration
        kube: Obj = {
            "namespace": namespace,
            "serviceaccount": {"name": sa["metadata"]["name"], "uid": sa["metadata"]["uid"]},
        }
        if pod is not None:
            kube["pod"] = {"name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
            node = (pod.get("spec") or {}).get("nodeName")
            if node:
                kube["node"] = {"name": node}
        claims = {
            "aud": audiences,
            "exp": exp,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": kube,
            "sub": f"system:serviceaccount:{namespace}:{sa['metadata']['name']}",
        }
        return self.sign(claims), exp


def same_token(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class User:
    """Who a request (or a reviewed token) is: kube's user.Info, and the token's audiences."""

    name: str
    groups: tuple[str, ...]
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)
    audiences: tuple[str, ...] = ()  # a service-account token's; () for the audience-agnostic admin token

    @property
    def anonymous(self) -> bool:
        return self.name == "system:anonymous"

    def info(self) -> Obj:
        """UserInfo as the review kinds show it (empty fields left out)."""
        out: Obj = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = self.extra
        return out


ADMIN = User("admin", ("system:masters", "system:authenticated"))
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def authenticate(token: str, admin_token: str, signer: TokenSigner | None, store: Store) -> User | None:
    """The user `token` authenticates as, or None."""
    if same_token(token, admin_token):
        return ADMIN
    claims = signer.verify(token) if signer is not None else None
    if claims is None:
        return None
    kube = claims.get("kubernetes.io") or {}
    ns = kube.get("namespace", "")
    ref = kube.get("serviceaccount") or {}
    sa = store.get("/serviceaccounts", ns, ref.get("name", ""))
    if sa is None or sa.obj()["metadata"].get("uid") != ref.get("uid"):
        return None
    extra: dict[str, list[str]] = {}
    pod = kube.get("pod")
    if pod:
        p = store.get("/pods", ns, pod.get("name", ""))
        if p is None or p.obj()["metadata"].get("uid") != pod.get("uid"):
            return None
        extra["authentication.kubernetes.io/pod-name"] = [pod.get("name", "")]
        extra["authentication.kubernetes.io/pod-uid"] = [pod.get("uid", "")]
    if claims.get("jti"):
        extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
    if (kube.get("node") or {}).get("name"):
        extra["authentication.kubernetes.io/node-name"] = [kube["node"]["name"]]
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else tuple(a for a in aud or () if isinstance(a, str))
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated")
    return User(str(claims.get("sub", "")), groups, str(ref.get("uid", "")), extra, audiences)
