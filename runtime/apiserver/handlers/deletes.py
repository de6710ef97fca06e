"""DELETE and DELETECOLLECTION: preconditions, finalizers, pod graceful deletion, namespace cascade."""

from __future__ import annotations

import time
from typing import Any

import orjson

from runtime.apiserver.api import Api
from runtime.apiserver.handlers.reads import list_bytes, matcher
from runtime.apiserver.http.context import ApiRequest
from runtime.apiserver.http.status_errors import bad_request, conflict, forbidden, not_found, success
from runtime.apiserver.registry import objects
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.registry.wireorder import encode

Obj = dict[str, Any]
Result = tuple[int, bytes]
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


def options(ctx: ApiRequest) -> Obj:
    """DeleteOptions from the body, with query parameters overriding (as the apiserver merges them)."""
    opts: Obj = {}
    if ctx.body and ctx.body.strip():
        try:
            body = orjson.loads(ctx.body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"the body of the request was not valid DeleteOptions: {exc}") from exc
        if isinstance(body, dict):
            opts = body
    q = ctx.query
    if "gracePeriodSeconds" in q:
        try:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError as exc:
            raise bad_request("gracePeriodSeconds must be an integer") from exc
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        opts["orphanDependents"] = q["orphanDependents"] == "true"
    if q.get("dryRun") == "All" or opts.get("dryRun") == ["All"]:
        opts["dryRun"] = ["All"]
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
    return opts


async def delete(api: Api, ctx: ApiRequest) -> Result:
    rt, name = ctx.rt, ctx.target.name or ""
    opts = options(ctx)
    if rt.kind == "Namespace" and not rt.group and name in PROTECTED_NAMESPACES:
        raise forbidden(
            f'namespaces "{name}" is forbidden: this namespace may not be deleted', "namespaces", name
        )
    entry = api.store.get(rt.key, ctx.ns, name)
    if entry is None:
        raise not_found(rt.plural, name, rt.group)
    obj = entry.obj()
    check_preconditions(rt, obj, opts.get("preconditions") or {})
    dry = bool(opts.get("dryRun"))
    return await delete_object(api, rt, obj, opts, dry)


def check_preconditions(rt: ResourceType, obj: Obj, pre: Obj) -> None:
    """DeleteOptions.preconditions, checked early as kube-apiserver's BeforeDelete does: its
    Conflict names the kind (`ConfigMap "a"`, `Deployment.apps "d"`), not the resource."""
    meta, name = obj["metadata"], obj["metadata"]["name"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        why = (
            f"the UID in the precondition ({pre['uid']}) does not match the UID in record "
            f"({meta.get('uid')}). The object might have been deleted and then recreated"
        )
        raise conflict(rt.kind, name, rt.group, why)
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        why = (
            f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not match the "
            f"ResourceVersion in record ({meta.get('resourceVersion')}). The object might have been modified"
        )
        raise conflict(rt.kind, name, rt.group, why)


def _pod_grace(obj: Obj, opts: Obj) -> int:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0  # never scheduled or already terminated: nothing to wait for
    grace = opts.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return max(0, int(grace))


async def delete_object(api: Api, rt: ResourceType, obj: Obj, opts: Obj, dry: bool) -> Result:
    meta = obj["metadata"]
    key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
    finalizers = list(meta.get("finalizers") or [])
    policy = opts.get("propagationPolicy")
    if opts.get("orphanDependents") is True:
        policy = "Orphan"
    changed = False
    if not meta.get("deletionTimestamp"):
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if finalizers != list(meta.get("finalizers") or []):
            meta["finalizers"] = finalizers
            changed = True
    grace = _pod_grace(obj, opts) if rt.kind == "Pod" and not rt.group else 0
    if rt.kind == "Namespace" and not rt.group:
        return await _delete_namespace(api, rt, obj, dry)
    if grace > 0 or finalizers:
        current = meta.get("deletionGracePeriodSeconds")
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = objects.rfc3339(time.time() + grace)
            meta["deletionGracePeriodSeconds"] = grace
            changed = True
        elif grace < (current if current is not None else 0) or (grace == 0 and current):
            meta["deletionTimestamp"] = objects.rfc3339(time.time() + grace)
            meta["deletionGracePeriodSeconds"] = grace
            changed = True
        if finalizers or grace > 0:
            if changed and not dry:
                meta["resourceVersion"] = str(api.store.next_rv())
                await api.store.commit([("MODIFIED", rt.key, key, obj)])
            return 200, encode(obj, rt.key)
    if dry:
        return 200, encode(obj, rt.key) if rt.return_deleted else orjson.dumps(
            success(meta["name"], rt.plural)
        )
    meta["resourceVersion"] = str(api.store.next_rv())
    await api.store.commit([("DELETED", rt.key, key, obj)])
    if rt.return_deleted or rt.crd:
        return 200, encode(obj, rt.key)
    return 200, orjson.dumps(success(meta["name"], rt.plural, rt.group, meta.get("uid", "")))


async def _delete_namespace(api: Api, rt: ResourceType, obj: Obj, dry: bool) -> Result:
    meta, name = obj["metadata"], obj["metadata"]["name"]
    if dry:
        return 200, encode(obj, rt.key)
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = objects.now()
        meta["deletionGracePeriodSeconds"] = 0
        obj["status"] = {"phase": "Terminating"}
        meta["resourceVersion"] = str(api.store.next_rv())
        await api.store.commit([("MODIFIED", rt.key, ("", name), obj)])
    marked = encode(obj, rt.key)
    if api.namespace_finalizer is not None:
        await api.namespace_finalizer(name)
    else:
        await purge_namespace(api, name)
    return 200, marked


async def purge_namespace(api: Api, name: str) -> None:
    """Remove every object in the namespace, then the namespace (stand-in for the namespace controller)."""
    changes = []
    for res, bucket in list(api.store.data.items()):
        if res == "/namespaces":
            continue
        for key in sorted(k for k in bucket if k[0] == name):
            o = bucket[key].obj()
            o["metadata"]["resourceVersion"] = str(api.store.next_rv())
            changes.append(("DELETED", res, key, o))
    ns = api.store.get("/namespaces", "", name)
    if ns is not None:
        o = ns.obj()
        o.setdefault("spec", {})["finalizers"] = []
        o["metadata"]["resourceVersion"] = str(api.store.next_rv())
        changes.append(("DELETED", "/namespaces", ("", name), o))
    if changes:
        await api.store.commit(changes)


async def delete_collection(api: Api, ctx: ApiRequest) -> Result:
    rt = ctx.rt
    opts = options(ctx)
    match = matcher(ctx)
    deleted: list[bytes] = []
    for _, e in api.store.items(rt.key, ctx.target.namespace):
        if match is not None and not match(e):
            continue
        obj = e.obj()
        if rt.kind == "Namespace" and not rt.group and obj["metadata"]["name"] in PROTECTED_NAMESPACES:
            continue
        _, raw = await delete_object(api, rt, obj, opts, bool(opts.get("dryRun")))
        deleted.append(encode(obj, rt.key) if raw.startswith(b'{"kind":"Status"') else raw)
    return 200, list_bytes(rt, {"resourceVersion": str(api.store.rv)}, deleted)
