"""KubeClient: the project's one Kubernetes client — dicts in, dicts out, typed errors.

The verbs (get/list/create/replace/patch/apply/delete) and resource discovery, spoken as plain JSON
over runtime/kube/transport.py, because everything kedge does with objects (wire protocol,
controllers, apply) is JSON anyway and lightkube's dataclass models would be converted back at once.
lightkube does the kubeconfig, auth and TLS (config.py, transport.py); why, in docs/architecture.md
("The Kubernetes client").

Every failure leaves as a runtime.errors type (see runtime/kube/errors.py).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.kube.config import KubeSource, resolve_kubeconfig
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import Res, lookup
from runtime.kube.transport import FIELD_MANAGER, KubeTransport
from runtime.kube.wire import (
    PATCH_CONTENT_TYPES,
    PatchKind,
    Propagation,
    Selector,
    delete_options,
    selectors,
    typed,
    with_type,
)


@dataclass(frozen=True)
class ObjectList:
    items: list[dict[str, Any]]
    resource_version: str


class KubeClient(KubeTransport):
    """Async Kubernetes client. Use `make_client()`; close with `await client.close()` or `async with`."""

    def __init__(
        self, source: KubeSource, *, timeout: float = 10.0, field_manager: str = FIELD_MANAGER
    ) -> None:
        super().__init__(source, timeout=timeout, field_manager=field_manager)
        self._discovered: dict[tuple[str, str], Res] = {}

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

    async def served_versions(self) -> set[str]:
        """Every group/version the server serves (`v1` for the core group), from /api and /apis."""
        core = await self.request("GET", "/api")
        served = {str(v) for v in core.get("versions") or []}
        groups = await self.request("GET", "/apis")
        for group in groups.get("groups") or []:
            served |= {str(v["groupVersion"]) for v in group.get("versions") or [] if v.get("groupVersion")}
        return served

    # -- verbs ----------------------------------------------------------------------------------

    async def get(
        self, res: Res, name: str, *, namespace: str | None = None, subresource: str | None = None
    ) -> dict[str, Any]:
        return await self.request("GET", res.path(self._ns(res, namespace), name, subresource))

    async def list(
        self,
        res: Res,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        limit: int | None = 500,
        resource_version: str | None = None,
    ) -> ObjectList:
        """Every object (following `continue` pages); namespace None on a namespaced kind = all."""
        path = res.collection_path(namespace)
        params: dict[str, Any] = {
            **selectors(labels, fields),
            "limit": limit,
            "resourceVersion": resource_version,
        }
        items: list[dict[str, Any]] = []
        while True:
            page = await self.request("GET", path, params=params)
            items += [typed(res, item) for item in page.get("items") or []]
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return ObjectList(items, str(meta.get("resourceVersion") or ""))
            params = {**params, "continue": meta["continue"], "resourceVersion": None}

    async def create(
        self,
        res: Res,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """POST; with `subresource` (binding, token, eviction) POST to `<name>/<subresource>`."""
        body = with_type(res, obj) if subresource is None else dict(obj)
        path = (
            res.path(self._ns(res, namespace, obj), name, subresource)
            if subresource
            else res.path(self._ns(res, namespace, obj))
        )
        return await self.request("POST", path, params=self._write_params(dry_run), body=body)

    async def replace(
        self,
        res: Res,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT (optimistic concurrency: a stale metadata.resourceVersion → KubeConflict)."""
        name = obj["metadata"]["name"]
        path = res.path(self._ns(res, namespace, obj), name, subresource)
        return await self.request("PUT", path, params=self._write_params(dry_run), body=with_type(res, obj))

    async def patch(
        self,
        res: Res,
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
        params = self._write_params(dry_run, field_manager)
        if type == "apply" and force:
            params["force"] = "true"
        path = res.path(
            self._ns(res, namespace, patch if isinstance(patch, Mapping) else None), name, subresource
        )
        return await self.request(
            "PATCH", path, params=params, body=patch, content_type=PATCH_CONTENT_TYPES[type]
        )

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        res: Res | None = None,
        force: bool = True,
        dry_run: bool = False,
        field_manager: str | None = None,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply of a full object (the kind is resolved from apiVersion/kind if needed)."""
        r = res if res is not None else await self.resolve(obj["apiVersion"], obj["kind"])
        return await self.patch(
            r, obj["metadata"]["name"], with_type(r, obj), namespace=self._ns(r, None, obj), type="apply",
            force=force, dry_run=dry_run, field_manager=field_manager, subresource=subresource,
        )  # fmt: skip

    async def delete(
        self,
        res: Res,
        name: str,
        *,
        namespace: str | None = None,
        grace_period: int | None = None,
        propagation: Propagation | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """DELETE with DeleteOptions; returns the server's answer (the object, or a Status)."""
        opts = delete_options(grace_period=grace_period, propagation=propagation)
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v is not None}
        if pre:
            opts["preconditions"] = pre
        if dry_run:
            opts["dryRun"] = ["All"]
        return await self.request("DELETE", res.path(self._ns(res, namespace), name), body=opts)

    async def delete_collection(
        self,
        res: Res,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        propagation: Propagation | None = None,
    ) -> dict[str, Any]:
        """DELETE on the collection (`kubectl delete --all`); returns the server's list of deleted objects."""
        params = selectors(labels, fields)
        opts = delete_options(propagation=propagation)
        return await self.request("DELETE", res.collection_path(namespace), params=params, body=opts)

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


def make_client(
    flag: Path | None = None, *, timeout: float = 10.0, field_manager: str = FIELD_MANAGER
) -> KubeClient:
    """Client for the kubeconfig chosen by resolve_kubeconfig (flag > $KUBECONFIG > ~/.kube/config >
    in-cluster); `.source` says which one won, `.server` the API URL."""
    return KubeClient(resolve_kubeconfig(flag), timeout=timeout, field_manager=field_manager)
