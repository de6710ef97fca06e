"""The HTTP side of KubeClient: connections built from the kubeconfig, one call, one watch stream.

lightkube resolves auth/TLS from the kubeconfig and builds the httpx client
(`lightkube.config.client_adapter`, the same one its AsyncClient uses); kedge sends plain JSON over
it. This is the only place that touches httpx, so every transport failure leaves here as a
runtime.errors type (see runtime/kube/errors.py); runtime/kube/client.py adds the verbs on top.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
from lightkube.config.client_adapter import ConnectionParams

from runtime.kube.config import KubeSource
from runtime.kube.errors import error_for_response, error_for_status, kube_errors, unreachable
from runtime.kube.resources import Res
from runtime.kube.wire import Selector, query, selectors, typed

# httpcore runs `import sniffio` on every async request; with sniffio absent (recent anyio no longer
# needs it) each failed import searches sys.path again: ~0.6 ms of CPU per request, measured in
# scripts/bench/controlplane.py. Remember the miss once (httpcore then assumes asyncio, as it does).
try:
    import sniffio  # noqa: F401
except ImportError:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

FIELD_MANAGER = "kedge"
# Requests: enough keep-alive connections that bursts never pay a TLS handshake, few enough that
# httpcore's per-request pool scan stays cheap. Watches hold a connection each for minutes, so
# they get a pool of their own instead of crowding (and slowing) the request pool.
POOL = httpx.Limits(max_connections=8, max_keepalive_connections=8)
WATCH_SILENCE = 90.0  # a watch with no line (event or bookmark) for this long is presumed dead
WATCH_POOL = httpx.Limits(max_connections=None, max_keepalive_connections=0)


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict[str, Any]


class KubeTransport:
    """Connections to one API server; close with `await close()` or `async with`."""

    def __init__(
        self, source: KubeSource, *, timeout: float = 10.0, field_manager: str = FIELD_MANAGER
    ) -> None:
        self.source_info = source
        self.source = source.describe()
        self.server = source.server.rstrip("/")
        self.namespace = source.single.namespace
        self.field_manager = field_manager
        self.timeout = timeout
        params = ConnectionParams(timeout=httpx.Timeout(timeout), trust_env=False)
        with kube_errors(self.server):  # lightkube's auth/TLS from the kubeconfig, kedge's pool size
            self._http = httpx.AsyncClient(**params.httpx_params(source.single), limits=POOL)
            self._watch_http = httpx.AsyncClient(**params.httpx_params(source.single), limits=WATCH_POOL)

    @property
    def ca_pem(self) -> str | None:
        """The cluster CA the kubeconfig trusts (PEM), None when it relies on system roots."""
        cluster = self.source_info.single.cluster
        if cluster.certificate_auth_data:
            return base64.b64decode(cluster.certificate_auth_data).decode()
        if cluster.certificate_auth:
            path = Path(str(self.source_info.single.abs_file(cluster.certificate_auth)))
            return path.read_text()
        return None

    async def close(self) -> None:
        await self._http.aclose()
        await self._watch_http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """One API call; returns the decoded JSON body (`{}` when empty); errors are typed."""
        clean = query(params)
        content = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = content_type
        try:
            resp = await self._http.request(
                method, path, params=clean, content=content, headers=headers,
                timeout=httpx.Timeout(request_timeout) if request_timeout else httpx.USE_CLIENT_DEFAULT,
            )  # fmt: skip
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc
        if resp.status_code >= 400:
            raise error_for_response(self.server, resp)
        if not resp.content:
            return {}
        data: dict[str, Any] = resp.json()
        return data

    async def watch_stream(
        self,
        res: Res,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        read_timeout: float | None = None,
        bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """ONE watch request: yields events until the server ends it (timeoutSeconds) — no retry.

        Raises Gone on 410 (as HTTP status or as an ERROR event), Unreachable when the connection
        fails or the server does not answer within `read_timeout`. A watch that goes silent for
        `read_timeout` (default 90 s; servers send a bookmark about every minute) simply ends, so a
        connection lost without a reset (a silent partition) is resumed instead of hanging for hours.
        runtime.kube.watch.watch_with_resume builds the resuming loop on this.
        """
        params: dict[str, Any] = {
            "watch": "true", **selectors(labels, fields),
            "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }  # fmt: skip
        path = res.collection_path(namespace)
        clean = query(params)
        read = read_timeout if read_timeout is not None else min(timeout_seconds + 30.0, WATCH_SILENCE)
        timeout = httpx.Timeout(self.timeout, read=read)
        streaming = False
        try:
            async with self._watch_http.stream(
                "GET", path, params=clean, headers={"Accept": "application/json"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    raise error_for_response(self.server, resp, await resp.aread())
                streaming = True
                async for line in _event_lines(resp):
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 500)
                        raise error_for_status(self.server, code, obj)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        typed(res, obj)
                    yield WatchEvent(str(kind), obj)
        except httpx.ReadTimeout as exc:
            if streaming:
                return  # silent for too long: end this watch, the caller resumes from its last RV
            raise unreachable(self.server, exc) from exc
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc
        except ValueError as exc:  # a torn JSON line: treat like a broken connection
            raise unreachable(self.server, exc) from exc


async def _event_lines(resp: httpx.Response) -> AsyncIterator[bytes]:
    """A watch stream's events: one JSON document per line, lines ended by b"\n" only. Not
    httpx's aiter_lines: that splits like str.splitlines, inside any string holding U+2028, U+2029
    or U+0085 (JSON may leave them unescaped), and one such object would break the watch for good."""
    rest = b""
    async for chunk in resp.aiter_bytes():
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            yield line
    if rest:
        yield rest
