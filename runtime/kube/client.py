"""KubeClient: the project's one Kubernetes client — dicts in, dicts out, typed errors.

A thin layer over lightkube: lightkube resolves auth/TLS from the kubeconfig and builds the httpx
client (`lightkube.config.client_adapter`, the same one its AsyncClient uses); kedge sends plain
JSON over it, because everything kedge does with objects (wire protocol, controllers, apply) is
JSON anyway and lightkube's dataclass models would be converted back at once. The typed lightkube
AsyncClient is still there (`.lightkube`) for code inside runtime/kube that wants models.

Every failure leaves as a runtime.errors type (see runtime/kube/errors.py).
"""

from __future__ import annotations

import base64
import builtins
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from lightkube import AsyncClient
from lightkube.config.client_adapter import ConnectionParams

from runtime.kube.config import KubeSource, resolve_kubeconfig
from runtime.kube.errors import KubeNotFound, error_for_response, error_for_status, kube_errors, unreachable
from runtime.kube.resources import Res, ResLike, lookup, res_of

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
PatchKind = Literal["merge", "strategic", "json", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
Selector = Mapping[str, str] | str | None


def selector(sel: Selector) -> str | None:
    """`{"a": "b"}` → `a=b`; a string is passed as is (full label/field selector syntax)."""
    if sel is None or isinstance(sel, str):
        return sel or None
    return ",".join(f"{k}={v}" if v != "" else k for k, v in sel.items()) or None


@dataclass(frozen=True)
class ObjectList:
    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    object: dict[str, Any]


class KubeClient:
    """Async Kubernetes client. Use `make_client()`; close with `await client.close()` or `async with`."""

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
        self._lightkube: AsyncClient | None = None
        self._discovered: dict[tuple[str, str], Res] = {}

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

    @property
    def lightkube(self) -> AsyncClient:
        """lightkube's typed AsyncClient on the same kubeconfig (field manager "kedge")."""
        if self._lightkube is None:
            self._lightkube = AsyncClient(
                self.source_info.config, timeout=httpx.Timeout(self.timeout),
                field_manager=self.field_manager, trust_env=False,
            )  # fmt: skip
        return self._lightkube

    async def close(self) -> None:
        await self._http.aclose()
        await self._watch_http.aclose()
        if self._lightkube is not None:
            await self._lightkube.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- raw ------------------------------------------------------------------------------------

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
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
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

    # -- resolution -----------------------------------------------------------------------------

    def _ns(self, res: Res, namespace: str | None, obj: Mapping[str, Any] | None = None) -> str | None:
        if not res.namespaced:
            return None
        meta_ns = (obj or {}).get("metadata", {}).get("namespace") if obj else None
        return namespace or meta_ns or self.namespace

    async def resolve(self, api_version: str, kind: str) -> Res:
        """The Res for apiVersion/kind: known locally, else from the server's discovery document."""
        key = (api_version, kind)
        if key in self._discovered:
            return self._discovered[key]
        found = lookup(api_version, kind)
        if found is None:
            group, _, version = api_version.rpartition("/")
            path = f"/apis/{group}/{version}" if group else f"/api/{version}"
            try:
                doc = await self.request("GET", path)
            except KubeNotFound as exc:
                raise KubeNotFound(
                    f"Kubernetes API {self.server}: no API {api_version} (is its CRD installed?)"
                ) from exc
            for r in doc.get("resources", []):
                if r.get("kind") == kind and "/" not in r.get("name", ""):
                    found = Res(group, version, kind, r["name"], bool(r.get("namespaced")))
                    break
            if found is None:
                raise KubeNotFound(f"Kubernetes API {self.server}: {api_version} has no kind {kind}")
        self._discovered[key] = found
        return found

    def remember(self, res: Res) -> None:
        """Tell the client about a resource (e.g. from a CRD just applied) without discovery."""
        self._discovered[(res.api_version, res.kind)] = res

    # -- verbs ----------------------------------------------------------------------------------

    async def get(
        self, res: ResLike, name: str, *, namespace: str | None = None, subresource: str | None = None
    ) -> dict[str, Any]:
        r = res_of(res)
        return await self.request("GET", r.path(self._ns(r, namespace), name, subresource))

    async def list(
        self,
        res: ResLike,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        limit: int | None = 500,
        resource_version: str | None = None,
    ) -> ObjectList:
        """Every object (following `continue` pages); namespace None on a namespaced kind = all."""
        r = res_of(res)
        path = r.path(namespace if r.namespaced else None)
        params: dict[str, Any] = {
            "labelSelector": selector(labels), "fieldSelector": selector(fields),
            "limit": limit, "resourceVersion": resource_version,
        }  # fmt: skip
        items: list[dict[str, Any]] = []
        while True:
            page = await self.request("GET", path, params=params)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", r.api_version)
                item.setdefault("kind", r.kind)
                items.append(item)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return ObjectList(items, str(meta.get("resourceVersion") or ""))
            params = {**params, "continue": meta["continue"], "resourceVersion": None}

    async def create(
        self,
        res: ResLike,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """POST; with `subresource` (binding, token, eviction) POST to `<name>/<subresource>`."""
        r = res_of(res)
        body = _with_type(r, obj) if subresource is None else dict(obj)
        path = (
            r.path(self._ns(r, namespace, obj), name, subresource)
            if subresource
            else r.path(self._ns(r, namespace, obj))
        )
        return await self.request("POST", path, params=self._write_params(dry_run), body=body)

    async def replace(
        self,
        res: ResLike,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT (optimistic concurrency: a stale metadata.resourceVersion → KubeConflict)."""
        r = res_of(res)
        name = obj["metadata"]["name"]
        path = r.path(self._ns(r, namespace, obj), name, subresource)
        return await self.request("PUT", path, params=self._write_params(dry_run), body=_with_type(r, obj))

    async def patch(
        self,
        res: ResLike,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        type: PatchKind = "merge",  # mirrors kubectl --type
        subresource: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        r = res_of(res)
        params = self._write_params(dry_run, field_manager)
        if type == "apply" and force:
            params["force"] = "true"
        path = r.path(
            self._ns(r, namespace, patch if isinstance(patch, Mapping) else None), name, subresource
        )
        return await self.request(
            "PATCH", path, params=params, body=patch, content_type=PATCH_CONTENT_TYPES[type]
        )

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        res: ResLike | None = None,
        force: bool = True,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply of a full object (the kind is resolved from apiVersion/kind if needed)."""
        r = res_of(res) if res is not None else await self.resolve(obj["apiVersion"], obj["kind"])
        return await self.patch(
            r, obj["metadata"]["name"], _with_type(r, obj), namespace=self._ns(r, None, obj), type="apply",
            force=force, dry_run=dry_run, field_manager=field_manager, subresource=subresource,
        )  # fmt: skip

    async def delete(
        self,
        res: ResLike,
        name: str,
        *,
        namespace: str | None = None,
        grace_period: int | None = None,
        propagation: Literal["Foreground", "Background", "Orphan"] | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE with DeleteOptions; returns the server's answer (the object, or a Status)."""
        r = res_of(res)
        opts: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            opts["gracePeriodSeconds"] = grace_period
        if propagation is not None:
            opts["propagationPolicy"] = propagation
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v is not None}
        if pre:
            opts["preconditions"] = pre
        if dry_run:
            opts["dryRun"] = ["All"]
        return await self.request("DELETE", r.path(self._ns(r, namespace), name), body=opts)

    async def delete_collection(
        self,
        res: ResLike,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        propagation: Literal["Foreground", "Background", "Orphan"] | None = None,
    ) -> dict[str, Any]:
        """DELETE on the collection (`kubectl delete --all`); returns the server's list of deleted objects."""
        r = res_of(res)
        params = {"labelSelector": selector(labels), "fieldSelector": selector(fields)}
        opts: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation is not None:
            opts["propagationPolicy"] = propagation
        return await self.request(
            "DELETE", r.path(namespace if r.namespaced else None), params=params, body=opts
        )

    async def discover(self, verbs: tuple[str, ...] = ()) -> builtins.list[Res]:
        """Every top-level resource the server serves (at each group's preferred version) that
        supports all of `verbs`."""
        core = await self.request("GET", "/api/v1")
        found = [_res_of_discovery("", "v1", r, verbs) for r in core.get("resources") or []]
        groups = await self.request("GET", "/apis")
        for group in groups.get("groups") or []:
            gv = (group.get("preferredVersion") or {}).get("groupVersion")
            if not gv:
                continue
            try:
                doc = await self.request("GET", f"/apis/{gv}")
            except KubeNotFound:
                continue  # a CRD group going away while we look
            grp, _, ver = gv.partition("/")
            found += [_res_of_discovery(grp, ver, r, verbs) for r in doc.get("resources") or []]
        return [r for r in found if r is not None]

    async def watch_stream(
        self,
        res: ResLike,
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
        r = res_of(res)
        params: dict[str, Any] = {
            "watch": "true", "labelSelector": selector(labels), "fieldSelector": selector(fields),
            "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }  # fmt: skip
        path = r.path(namespace if r.namespaced else None)
        clean = {k: _param(v) for k, v in params.items() if v is not None}
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
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 500)
                        raise error_for_status(self.server, code, obj)
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        obj.setdefault("apiVersion", r.api_version)
                        obj.setdefault("kind", r.kind)
                    yield WatchEvent(str(kind), obj)
        except httpx.ReadTimeout as exc:
            if streaming:
                return  # silent for too long: end this watch, the caller resumes from its last RV
            raise unreachable(self.server, exc) from exc
        except httpx.TransportError as exc:
            raise unreachable(self.server, exc) from exc
        except ValueError as exc:  # a torn JSON line: treat like a broken connection
            raise unreachable(self.server, exc) from exc

    def _write_params(self, dry_run: bool, field_manager: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"fieldManager": field_manager or self.field_manager}
        if dry_run:
            params["dryRun"] = "All"
        return params


def _res_of_discovery(group: str, version: str, entry: dict[str, Any], verbs: tuple[str, ...]) -> Res | None:
    name = entry.get("name") or ""
    if "/" in name or not entry.get("kind"):
        return None  # subresource
    if not set(verbs) <= set(entry.get("verbs") or []):
        return None
    return Res(group, version, entry["kind"], name, bool(entry.get("namespaced")))


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _with_type(res: Res, obj: Mapping[str, Any]) -> dict[str, Any]:
    body = dict(obj)
    body.setdefault("apiVersion", res.api_version)
    body.setdefault("kind", res.kind)
    return body


def make_client(
    flag: Path | None = None, *, timeout: float = 10.0, field_manager: str = FIELD_MANAGER
) -> KubeClient:
    """Client for the kubeconfig chosen by resolve_kubeconfig (flag > $KUBECONFIG > ~/.kube/config >
    in-cluster); `.source` says which one won, `.server` the API URL."""
    return KubeClient(resolve_kubeconfig(flag), timeout=timeout, field_manager=field_manager)
