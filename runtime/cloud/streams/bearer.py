"""BearerReviews: a bearer token on the two read-only usage routes, reviewed as kubelet reviews it.

metrics-server authenticates to kubelets with its ServiceAccount token by default; kubelet (webhook
authn/authz) asks the API server a TokenReview of the token, then a SubjectAccessReview of the user it
names for ``get`` on ``nodes/metrics`` (``/metrics/resource``) or ``nodes/stats`` (``/stats/summary``).
The answer (200, 401 unauthenticated, 403 forbidden) is kept for ``ttl`` seconds per (token,
subresource); a failed review is not kept and refuses (fail closed). Only the usage routes take a
bearer token: logs, exec, attach and port-forward stay client-certificate only (endpoint.py).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from runtime.errors import KedgeError
from runtime.kube.client import KubeClient

log = logging.getLogger("kedge.cloudstream")
TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECTACCESSREVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
SUBRESOURCES = {"/metrics/resource": "metrics", "/stats/summary": "stats"}
MAX_CACHED = 1000


class BearerReviews:
    def __init__(self, client: KubeClient, ttl: float = 10.0) -> None:
        self.client, self.ttl = client, ttl
        self._cache: dict[tuple[str, str], tuple[float, int, str]] = {}

    async def check(self, token: str, path: str) -> tuple[int, str]:
        """(200, user), (401, why) or (403, why) for `token` reading `path` (one of SUBRESOURCES)."""
        sub = SUBRESOURCES[path]
        now = time.monotonic()
        hit = self._cache.get((token, sub))
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        try:
            status, text = await self._review(token, sub)
        except KedgeError as exc:
            log.warning("stream endpoint: bearer token review failed: %s", exc)
            return 401, "Unauthorized: the API server could not review the token"
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[(token, sub)] = (now + self.ttl, status, text)
        return status, text

    async def _review(self, token: str, sub: str) -> tuple[int, str]:
        tr = await self.client.request(
            "POST",
            TOKENREVIEWS,
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
        )
        st: dict[str, Any] = tr.get("status") or {}
        user: dict[str, Any] = st.get("user") or {}
        if not st.get("authenticated") or not user.get("username"):
            return 401, "Unauthorized"
        spec: dict[str, Any] = {
            "user": user["username"],
            "groups": user.get("groups") or [],
            "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": sub},
        }
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = user["extra"]
        sar = await self.client.request(
            "POST",
            SUBJECTACCESSREVIEWS,
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        if (sar.get("status") or {}).get("allowed") is True:
            return 200, user["username"]
        name = user["username"]
        return 403, f"Forbidden (user={name}, verb=get, resource=nodes, subresource={sub})"
