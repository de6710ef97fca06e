"""What the pod manager references (ConfigMaps, Secrets, ServiceAccount tokens), served from the cache.

Why cache first: pods must keep starting and restarting while the cloud is away (autonomy), and the
cloud pushes updates of the objects it sent us (capture seq 59), so a cached copy stays current. A miss
while online is a ``query`` to the cloud (bare object in the answer, capture seq 36), stored before it
is returned. Tokens are refreshed at 80 % of their lifetime while online; offline the cached token is
served as long as it exists (design.md §5).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from runtime.edge.link import Hub
from runtime.edge.metastore import MetaStore
from runtime.errors import KedgeError
from runtime.protocol import GROUP_META, OP_QUERY, SRC_EDGED, new_message, split_result

log = logging.getLogger("kedge.edge.refs")
REFRESH_AT = 0.8


def _expiry(token_request: dict[str, Any]) -> float | None:
    text = (token_request.get("status") or {}).get("expirationTimestamp")
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


class CacheRefs:
    """A ``runtime.edge.pods.RefResolver`` over the MetaStore and the cloud link."""

    def __init__(self, store: MetaStore, hub: Hub, timeout: float = 10.0) -> None:
        self.store, self.hub, self.timeout = store, hub, timeout

    async def _query(self, resource: str, content: Any = None) -> Any:
        resp = await self.hub.request(
            new_message(SRC_EDGED, GROUP_META, OP_QUERY, resource, content), timeout=self.timeout
        )
        obj, err = split_result(resp.content)
        if err is not None:
            if err.get("code") == 404:
                return None
            raise KedgeError(f"query {resource}: {err.get('code')} {err.get('message')}")
        return obj if isinstance(obj, dict) else None

    async def _object(self, typ: str, ns: str, name: str) -> dict[str, Any] | None:
        cached = await self.store.get(typ, ns, name)
        if cached is not None or not self.hub.connected:
            return cached if isinstance(cached, dict) else None
        try:
            obj = await self._query(f"{ns}/{typ}/{name}")
        except KedgeError as exc:
            log.warning("%s %s/%s: %s", typ, ns, name, exc)
            return None
        if obj is not None:
            await self.store.put(typ, ns, name, obj)
        return obj

    async def configmap(self, ns: str, name: str) -> dict[str, Any] | None:
        return await self._object("configmap", ns, name)

    async def secret(self, ns: str, name: str) -> dict[str, Any] | None:
        return await self._object("secret", ns, name)

    async def sa_token(
        self, ns: str, sa: str, pod: dict[str, Any], expiration: int, audience: list[str] | None
    ) -> str | None:
        meta = pod.get("metadata") or {}
        key = f"{sa}.{meta.get('uid', '')}"
        cached = await self.store.get("serviceaccounttoken", ns, key)
        now = time.time()
        if isinstance(cached, dict):
            exp = _expiry(cached)
            lifetime = float((cached.get("spec") or {}).get("expirationSeconds") or expiration)
            fresh = exp is not None and now < exp - (1 - REFRESH_AT) * lifetime
            if fresh or not self.hub.connected:
                return str((cached.get("status") or {}).get("token") or "") or None
        elif not self.hub.connected:
            return None
        body = {
            "metadata": {"creationTimestamp": None},
            "spec": {
                "audiences": audience,
                "expirationSeconds": expiration,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": meta.get("name", ""),
                    "uid": meta.get("uid", ""),
                },
            },
            "status": {"token": "", "expirationTimestamp": None},
        }
        try:
            obj = await self._query(f"{ns}/serviceaccounttoken/{sa}", body)
        except KedgeError as exc:
            log.warning("token for %s/%s: %s", ns, sa, exc)
            obj = None
        if obj is None:
            return str(((cached or {}).get("status") or {}).get("token") or "") or None
        await self.store.put("serviceaccounttoken", ns, key, obj)
        return str((obj.get("status") or {}).get("token") or "") or None
