"""PATCH (JSON, merge, strategic) and server-side apply: compute the new object, then store it through
writes.save_update (or writes.create, when an apply creates)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import yaml

from runtime.apiserver.api import Api
from runtime.apiserver.handlers import semantics
from runtime.apiserver.handlers.guards import check_gvk, decoding
from runtime.apiserver.handlers.reads import as_version
from runtime.apiserver.handlers.writes import (
    Result,
    check_namespace,
    create,
    in_version,
    save_update,
)
from runtime.apiserver.http.context import ApiRequest, require_object
from runtime.apiserver.http.status_errors import (
    StatusError,
    bad_request,
    invalid,
    not_found,
    stale,
    unsupported_media_type,
    unsupported_patch_type,
)
from runtime.apiserver.validation import fields as validation
from runtime.apiserver.validation import strictpatch

Obj = dict[str, Any]

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def _patch_error(exc: Exception) -> StatusError:
    code = int(getattr(exc, "code", 422))
    reason = {400: "BadRequest", 409: "Conflict"}.get(code, "Invalid")
    return StatusError(code, reason, str(exc))


async def patch(api: Api, ctx: ApiRequest) -> Result:
    rt, name = ctx.rt, ctx.target.name or ""
    ptype = PATCH_TYPES.get(ctx.content_type())
    accepted = [t for t, k in PATCH_TYPES.items() if not (k == "strategic" and rt.crd)]
    if ptype is None:
        raise unsupported_patch_type()
    if ptype == "strategic" and rt.crd:
        raise unsupported_media_type(ctx.content_type(), accepted)
    if ptype == "apply":
        return await apply(api, ctx)
    entry = api.store.get(rt.key, ctx.ns, name)
    if entry is None:
        raise not_found(rt.plural, name, rt.group)
    old = in_version(rt, entry.obj())
    try:
        body: Any = orjson.loads(ctx.body) if ctx.body else None
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc
    try:
        if ptype == "json":
            if not isinstance(body, list):
                raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            new = semantics.apply_json_patch(old, body)
        else:
            if not isinstance(body, dict):
                raise bad_request("json: cannot unmarshal into Go value of type map[string]interface {}")
            if ptype == "merge":
                new = semantics.apply_merge_patch(old, body)
            else:
                new = semantics.apply_strategic_merge_patch(old, body, rt.kind, rt.api_version)
    except semantics.PatchError as exc:
        raise _patch_error(exc) from exc
    except (TypeError, AttributeError, KeyError, ValueError, IndexError) as exc:
        raise bad_request(f"the patch could not be applied: {type(exc).__name__}: {exc}") from exc
    if not isinstance(new, dict):
        raise bad_request("the patched object is not an object")
    check_gvk(rt, new)
    new = validation.check_fields(ctx, rt, new, _strict_value(ptype, old, body))
    patched_rv = (new.get("metadata") or {}).get("resourceVersion")
    check = bool(patched_rv) and patched_rv != old["metadata"].get("resourceVersion")
    return await save_update(api, ctx, old, new, check_rv=check, manager_op="Update", uid_precondition=False)


def _strict_value(ptype: str, old: Obj, body: Any) -> Callable[[], str] | None:
    """How the real server prints a patch its strict decoding refuses (strictpatch.py), rendered
    only when one is refused."""
    if ptype == "merge":
        return lambda: strictpatch.merge_patched_text(old, body)
    if ptype == "strategic":
        return lambda: strictpatch.go_value_text(body)
    return None


async def apply(api: Api, ctx: ApiRequest) -> Result:
    rt, name = ctx.rt, ctx.target.name or ""
    manager = ctx.query.get("fieldManager")
    if not manager:  # PatchOptions validation, as kube-apiserver words it
        why = "fieldManager: Required value: is required for apply patch"
        raise invalid("PatchOptions", "", "meta.k8s.io", [("fieldManager", "FieldValueRequired", why)])
    try:
        applied = yaml.safe_load(ctx.body) if ctx.body else None
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from exc
    applied = require_object(applied)
    if not applied.get("apiVersion") or not applied.get("kind"):
        raise bad_request("apiVersion and kind must be set in an apply request")
    check_gvk(rt, applied)
    applied = validation.check_apply_fields(ctx, rt, applied)
    check_namespace(ctx, applied)
    meta = applied.setdefault("metadata", {})
    if meta.get("name", name) != name:
        raise bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )
    force = ctx.query.get("force", "") in ("true", "1")
    entry = api.store.get(rt.key, ctx.ns, name)
    live = in_version(rt, entry.obj()) if entry is not None else None
    if live is None and ctx.target.sub:
        raise not_found(rt.plural, name, rt.group)
    try:
        with decoding():
            result = semantics.server_side_apply(
                live,
                applied,
                manager=manager,
                force=force,
                kind=rt.kind,
                api_version=rt.api_version,
                subresource=ctx.target.sub,
                schema=rt.schema if rt.crd else None,
            )
    except semantics.ApplyConflict as exc:
        raise _apply_conflict(exc) from exc
    except semantics.PatchError as exc:
        raise _patch_error(exc) from exc
    if live is None:
        result.setdefault("metadata", {})["name"] = name
        result["metadata"].pop("resourceVersion", None)
        return await create(api, ctx, result, managed=False)
    rv = meta.get("resourceVersion")
    if rv and rv != live["metadata"].get("resourceVersion"):
        raise stale(rt.plural, name, rt.group)
    if not live["metadata"].get("managedFields") and _without_managed(result) == _without_managed(live):
        # Nothing to change, and the only news would be "before-first-apply" taking ownership of an
        # object nobody tracked (e.g. created by an apply of nothing but its name): a no-op, as for
        # any other re-apply of the same configuration.
        assert entry is not None
        return 200, as_version(rt, entry.raw)
    return await save_update(api, ctx, live, result, check_rv=False, manager_op="", uid_precondition=False)


def _without_managed(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def _apply_conflict(exc: semantics.ApplyConflict) -> StatusError:
    causes = [
        {
            "reason": c.get("type", "FieldManagerConflict"),
            "message": c.get("message", ""),
            "field": c.get("field", ""),
        }
        for c in exc.causes
    ]
    return StatusError(409, "Conflict", str(exc), {"causes": causes})
