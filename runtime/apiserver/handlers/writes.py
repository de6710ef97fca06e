"""Create and update: the generic registry's write path, with admission and managedFields (patch and
apply compute the new object in patches.py, then end here in save_update or create)."""

from __future__ import annotations

from typing import Any

import orjson

from runtime.apiserver.admission.create import admit_pod_create
from runtime.apiserver.admission.defaults import default_object
from runtime.apiserver.api import Api
from runtime.apiserver.handlers import semantics
from runtime.apiserver.handlers.guards import admission, allocate, check_gvk, decoding
from runtime.apiserver.handlers.reads import as_read, as_version, needs_conversion
from runtime.apiserver.http.context import ApiRequest, require_object
from runtime.apiserver.http.status_errors import (
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    method_not_allowed,
    not_found,
    stale,
)
from runtime.apiserver.registry import objects
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.registry.wireorder import encode
from runtime.apiserver.validation import fields as validation

Obj = dict[str, Any]
Result = tuple[int, bytes]


def check_namespace(ctx: ApiRequest, obj: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    if ctx.rt.namespaced:
        if not ctx.target.namespace:
            raise method_not_allowed()
        ns = meta.get("namespace")
        if ns and ns != ctx.ns:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )


def namespace_open(api: Api, ctx: ApiRequest) -> None:
    if not ctx.rt.namespaced:
        return
    ns = api.store.get("/namespaces", "", ctx.ns)
    if ns is None:
        raise not_found("namespaces", ctx.ns)
    if b'"deletionTimestamp"' in ns.raw:
        raise forbidden(
            f'{ctx.rt.plural} "{ctx.target.name or ""}" is forbidden: '
            "unable to create new content in namespace "
            f""
            f"{ctx.ns} because it is being terminated",
            ctx.rt.plural,
            ctx.target.name or "",
            ctx.rt.group,
        )


async def create(
    api: Api, ctx: ApiRequest, obj: Obj | None = None, *, status: int = 201, managed: bool = True
) -> Result:
    rt = ctx.rt
    owned = obj is None  # decoded here: nothing else holds it, so defaulting may work in place
    if obj is None:
        obj = require_object(ctx.decode_body())
        check_gvk(rt, obj)
        obj = validation.check_fields(ctx, rt, obj)
    check_namespace(ctx, obj)
    meta = obj["metadata"]
    name = meta.get("name") or ""
    if not name:
        gen = meta.get("generateName") or ""
        if not gen:
            raise invalid(
                rt.kind,
                "",
                rt.group,
                [
                    (
                        "metadata.name",
                        "FieldValueRequired",
                        "metadata.name: Required value: name or generateName is required",
                    )
                ],
            )
        name = objects.generate_name(gen)
        meta["name"] = name
    causes = objects.name_errors(rt, name) + objects.metadata_errors(obj)
    if causes:
        raise invalid(rt.kind, name, rt.group, causes)
    ctx.target.name = ctx.target.name or name
    namespace_open(api, ctx)
    key = (ctx.ns if rt.namespaced else "", name)
    if api.store.get(rt.key, *key) is not None:
        raise already_exists(rt.plural, name, rt.group)
    objects.prepare_create(rt, obj, ctx.ns)
    # The real server's order: decode-time defaults, managedFields (the writer owns what it sent plus
    # the defaults), then admission (what the plugins add belongs to nobody).
    with decoding(), admission(rt, name):
        if not rt.crd:
            obj = default_object(rt.plural, obj, owned=owned)
        else:
            obj = validation.default_custom(rt, obj)
        if managed:
            obj = semantics.update_managed_fields(
                None,
                obj,
                manager=ctx.manager(),
                operation="Update",
                subresource=ctx.target.sub,
                time=obj["metadata"]["creationTimestamp"],  # the same clock, read once
                typed=not rt.crd,
                schema=rt.schema if rt.crd else None,
            )
        if rt.kind == "Pod" and not rt.group:
            obj = admit_pod_create(
                obj,
                _automount(api, ctx, obj),
                priority_classes=_priority_classes(api, obj),
                owned=True,
                defaulted=True,
            )
        elif not rt.crd:
            obj = semantics.admit_create(rt.plural, obj)
        if rt.kind == "Service" and not rt.group:
            obj = allocate(api, obj, None)
        validation.validate(rt, obj, None, ctx.target.sub or "")
    if ctx.dry_run:
        return status, encode(obj, rt.key)
    obj["metadata"]["resourceVersion"] = str(api.store.next_rv())
    stored = api.store.commit([("ADDED", rt.key, key, to_storage(rt, obj))])
    after = api.store.get(rt.key, *key)  # this write's object: read before a listener's follow-up lands
    await stored
    return status, as_version(rt, after.raw) if after is not None else encode(obj, rt.key)


def _automount(api: Api, ctx: ApiRequest, pod: Obj) -> bool | None:
    sa_name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
    sa = api.store.get("/serviceaccounts", ctx.ns, sa_name)
    if sa is None or b'"automountServiceAccountToken"' not in sa.raw:  # no need to decode it
        return None
    flag: bool | None = sa.obj().get("automountServiceAccountToken")
    return flag


def _priority_classes(api: Api, pod: Obj) -> dict[str, int] | None:
    """The stored PriorityClasses, read only when the pod names one (admission knows the system ones)."""
    if not (pod.get("spec") or {}).get("priorityClassName"):
        return None
    return {
        k[1]: int(e.obj().get("value", 0))
        for k, e in api.store.items("scheduling.k8s.io/priorityclasses", None)
    }


def in_version(rt: ResourceType, obj: Obj) -> Obj:
    """A stored custom resource as seen through the request's version (conversion None), so that a
    patch sent to a served non-storage version (kubectl uses the preferred one) applies to it, with the
    defaults a read gives (reads.as_read)."""
    return as_read(rt, obj) if rt.crd else obj


def to_storage(rt: ResourceType, obj: Obj) -> Obj:
    if needs_conversion(rt):
        obj["apiVersion"] = f"{rt.group}/{rt.storage_version}"
    return obj


async def update(api: Api, ctx: ApiRequest) -> Result:
    rt, name = ctx.rt, ctx.target.name or ""
    obj = require_object(ctx.decode_body())
    check_gvk(rt, obj)
    obj = validation.check_fields(ctx, rt, obj)
    check_namespace(ctx, obj)
    body_name = obj["metadata"].get("name")
    if body_name != name:
        raise bad_request(
            f"the name of the object ({body_name or ''}) does not match the name on the URL ({name})"
        )
    entry = api.store.get(rt.key, ctx.ns, name)
    if entry is None:
        if rt.create_on_update and not ctx.target.sub:
            obj["metadata"].pop("resourceVersion", None)
            return await create(api, ctx, obj)
        raise not_found(rt.plural, name, rt.group)
    old = entry.obj()
    rv = obj["metadata"].get("resourceVersion")
    if not rv and not rt.unconditional_update:
        raise invalid(
            rt.kind,
            name,
            rt.group,
            [
                (
                    "metadata.resourceVersion",
                    "FieldValueInvalid",
                    "metadata.resourceVersion: Invalid value: 0: must be specified for an update",
                )
            ],
        )
    return await save_update(api, ctx, old, obj, check_rv=bool(rv), manager_op="Update")


async def save_update(
    api: Api,
    ctx: ApiRequest,
    old: Obj,
    new: Obj,
    *,
    check_rv: bool,
    manager_op: str,
    uid_precondition: bool = True,
) -> Result:
    """The common tail of PUT and PATCH: preconditions, server fields, no-op detection, finalizers.

    A PUT body's uid is a precondition (409, storage's text); a patch or apply that changes the uid
    fails validation instead (422 `field is immutable`), as kube-apiserver answers: its patch
    handler passes no object to take preconditions from."""
    rt, name = ctx.rt, ctx.target.name or ""
    om, nm = old["metadata"], new.setdefault("metadata", {})
    if check_rv and str(nm.get("resourceVersion")) != om.get("resourceVersion"):
        raise stale(rt.plural, name, rt.group)
    if nm.get("uid") and nm["uid"] != om.get("uid"):
        if not uid_precondition:
            why = f"metadata.uid: Invalid value: {orjson.dumps(nm['uid']).decode()}: field is immutable"
            raise invalid(rt.kind, name, rt.group, [("metadata.uid", "FieldValueInvalid", why)])
        raise conflict(
            rt.plural,
            name,
            rt.group,
            f"Precondition failed: UID in precondition: {nm['uid']}, UID in object meta: {om.get('uid')}",
        )
    if nm.get("name", name) != name:
        raise bad_request(
            f"the name of the object ({nm.get('name')}) does not match the name on the URL ({name})"
        )
    nm["name"] = name
    with decoding(), admission(rt, name):
        if not rt.crd:
            new = default_object(rt.plural, new)  # the decoder defaults every write, not only creates
        else:
            new = validation.default_custom(rt, new)
        new = objects.prepare_update(rt, old, new, ctx.target.sub)
        if rt.kind == "Service" and not rt.group and ctx.target.sub != "status":
            new = allocate(api, new, old)
    objects.check_finalizer_additions(rt, old, new)
    causes = objects.metadata_errors(new)
    if causes:
        raise invalid(rt.kind, name, rt.group, causes)
    with decoding():
        validation.validate(rt, new, old, ctx.target.sub or "")
    if manager_op:
        with decoding():
            new = semantics.update_managed_fields(
                old,
                new,
                manager=ctx.manager(),
                operation=manager_op,
                subresource=ctx.target.sub,
                typed=not rt.crd,
                schema=rt.schema if rt.crd else None,
            )
    new["metadata"]["resourceVersion"] = om.get("resourceVersion")
    if objects.same_object(old, new):
        entry = api.store.get(rt.key, ctx.ns, name)
        return 200, as_version(rt, entry.raw) if entry is not None else encode(old, rt.key)
    if ctx.dry_run:
        return 200, encode(new, rt.key)
    key = (ctx.ns, name)
    new["metadata"]["resourceVersion"] = str(api.store.next_rv())
    if (
        new["metadata"].get("deletionTimestamp")
        and not new["metadata"].get("finalizers")
        and (rt.plural != "pods" or not new["metadata"].get("deletionGracePeriodSeconds"))
    ):
        await api.store.commit([("DELETED", rt.key, key, to_storage(rt, new))])
        return 200, as_version(rt, encode(new, rt.key))
    stored = api.store.commit([("MODIFIED", rt.key, key, to_storage(rt, new))])
    after = api.store.get(rt.key, *key)  # as in create: the answer is what this write stored
    await stored
    return 200, as_version(rt, after.raw) if after is not None else encode(new, rt.key)
