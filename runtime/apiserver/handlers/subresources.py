"""Subresources with their own request kinds: pods/binding, pods/eviction, serviceaccounts/token,
*/scale, namespaces/finalize."""

from __future__ import annotations

from typing import Any

import orjson

from runtime.apiserver.api import Api
from runtime.apiserver.handlers.deletes import delete_object
from runtime.apiserver.handlers.writes import save_update
from runtime.apiserver.http.auth import ISSUER
from runtime.apiserver.http.context import ApiRequest, require_object
from runtime.apiserver.http.status_errors import StatusError, bad_request, conflict, invalid, not_found
from runtime.apiserver.registry import objects

Obj = dict[str, Any]
Result = tuple[int, bytes]


async def binding(api: Api, ctx: ApiRequest) -> Result:
    body = require_object(ctx.decode_body())
    name = ctx.target.name or ""
    target = body.get("target") or {}
    if not target.get("name"):
        raise invalid(
            "Binding", name, "", [("target.name", "FieldValueRequired", "target.name: Required value")]
        )
    entry = api.store.get("/pods", ctx.ns, name)
    if entry is None:
        raise not_found("pods", name)
    pod = entry.obj()
    if pod["metadata"].get("deletionTimestamp"):
        raise conflict("pods/binding", name, "", f"pod {name} is being deleted, cannot be assigned to a host")
    if (pod.get("spec") or {}).get("nodeName"):
        raise conflict(
            "pods/binding", name, "", f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"'
        )
    uid = (body.get("metadata") or {}).get("uid")
    if uid and uid != pod["metadata"].get("uid"):
        raise conflict(
            "pods/binding",
            name,
            "",
            f"Precondition failed: UID in precondition: {uid}, "
            f"UID in object meta: {pod['metadata'].get('uid')}",
        )
    new = orjson.loads(entry.raw)
    new["spec"]["nodeName"] = target["name"]
    conds = new.setdefault("status", {}).setdefault("conditions", [])
    conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
    conds.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": objects.now()}
    )
    if not ctx.dry_run:
        new["metadata"]["resourceVersion"] = str(api.store.next_rv())
        await api.store.commit([("MODIFIED", "/pods", (ctx.ns, name), new)])
    return 201, orjson.dumps(_ok())


def _ok() -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def eviction(api: Api, ctx: ApiRequest) -> Result:
    name = ctx.target.name or ""
    entry = api.store.get("/pods", ctx.ns, name)
    if entry is None:
        raise not_found("pods", name)
    body = require_object(ctx.decode_body())
    opts = body.get("deleteOptions") or {}
    rt = api.registry.get("", "v1", "pods")
    assert rt is not None
    await delete_object(api, rt, entry.obj(), opts, ctx.dry_run)
    return 201, orjson.dumps(_ok())


async def token(api: Api, ctx: ApiRequest) -> Result:
    name = ctx.target.name or ""
    req = require_object(ctx.decode_body())
    spec = req.get("spec") or {}
    sa_entry = api.store.get("/serviceaccounts", ctx.ns, name)
    if sa_entry is None:
        raise not_found("serviceaccounts", name)
    sa = sa_entry.obj()
    exp = int(spec.get("expirationSeconds") or 3600)
    if exp < 600:
        raise invalid(
            "TokenRequest",
            name,
            "authentication.k8s.io",
            [
                (
                    "spec.expirationSeconds",
                    "FieldValueInvalid",
                    f"spec.expirationSeconds: Invalid value: {exp}: "
                    "may not specify a duration less than 10 minutes",
                )
            ],
        )
    exp = min(exp, 2**32)
    audiences = list(spec.get("audiences") or [ISSUER])
    pod = None
    ref = spec.get("boundObjectRef")
    if ref:
        kind, ref_name = ref.get("kind"), ref.get("name", "")
        if kind != "Pod":
            if kind != "Secret":
                raise bad_request(f'cannot bind token to object of kind "{kind}"')
        else:
            pentry = api.store.get("/pods", ctx.ns, ref_name)
            if pentry is None:
                raise not_found("pods", ref_name)
            pod = pentry.obj()
            if ref.get("uid") and ref["uid"] != pod["metadata"].get("uid"):
                raise conflict(
                    "pods",
                    ref_name,
                    "",
                    f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                    "The object might have been deleted and then recreated",
                )
            pod_sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
            if pod_sa != name:
                raise bad_request(
                    f'cannot bind token for serviceaccount "{name}" to pod running with '
                    f"different serviceaccount name."
                )
    tok, expires = api.signer.issue(ctx.ns, sa, audiences, exp, pod)
    out = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ctx.ns, "creationTimestamp": None},
        "spec": {"audiences": audiences, "expirationSeconds": exp, "boundObjectRef": ref or None},
        "status": {"token": tok, "expirationTimestamp": objects.rfc3339(expires)},
    }
    return 201, orjson.dumps(out)


def _scale_of(obj: Obj, rt_group: str, plural: str) -> Obj:
    meta = obj["metadata"]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector") or {}
    # a ReplicationController's selector is a plain label map, the others' a LabelSelector
    sel = (selector if plural == "replicationcontrollers" else selector.get("matchLabels")) or {}
    out: Obj = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0)},
    }
    if sel:
        out["status"]["selector"] = ",".join(f"{k}={v}" for k, v in sorted(sel.items()))
    return out


async def scale(api: Api, ctx: ApiRequest) -> Result:
    rt, name = ctx.rt, ctx.target.name or ""
    entry = api.store.get(rt.key, ctx.ns, name)
    if entry is None:
        raise not_found(rt.plural, name, rt.group)
    obj = entry.obj()
    if ctx.method == "GET":
        return 200, orjson.dumps(_scale_of(obj, rt.group, rt.plural))
    body = require_object(ctx.decode_body()) if ctx.method != "PATCH" else {}
    if ctx.method == "PATCH":
        from runtime.apiserver.handlers.semantics import PatchError, apply_json_patch, apply_merge_patch

        cur = _scale_of(obj, rt.group, rt.plural)
        try:
            raw: Any = orjson.loads(ctx.body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc
        try:
            if ctx.content_type().endswith("json-patch+json") and isinstance(raw, list):
                body = apply_json_patch(cur, raw)
            else:
                body = apply_merge_patch(cur, require_object(raw))
        except PatchError as exc:
            raise StatusError(exc.code, "Invalid" if exc.code == 422 else "BadRequest", exc.message) from exc
    replicas = (body.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(
            "Scale",
            name,
            "autoscaling",
            [
                (
                    "spec.replicas",
                    "FieldValueInvalid",
                    f"spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0",
                )
            ],
        )
    rv = (body.get("metadata") or {}).get("resourceVersion")
    new = entry.obj()
    new.setdefault("spec", {})["replicas"] = replicas
    if rv:
        new["metadata"]["resourceVersion"] = rv
    ctx.target.sub = ""
    await save_update(api, ctx, obj, new, check_rv=bool(rv), manager_op="Update")
    after = api.store.get(rt.key, ctx.ns, name)
    assert after is not None
    return 200, orjson.dumps(_scale_of(after.obj(), rt.group, rt.plural))


async def finalize(api: Api, ctx: ApiRequest) -> Result:
    """PUT namespaces/<n>/finalize: only spec.finalizers changes; an emptied, deleting namespace goes."""
    name = ctx.target.name or ""
    entry = api.store.get("/namespaces", "", name)
    if entry is None:
        raise not_found("namespaces", name)
    body = require_object(ctx.decode_body())
    old = entry.obj()
    new = entry.obj()
    new.setdefault("spec", {})["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
    rv = (body.get("metadata") or {}).get("resourceVersion")
    if rv and rv != old["metadata"].get("resourceVersion"):
        from runtime.apiserver.http.status_errors import stale

        raise stale("namespaces", name)
    new["metadata"]["resourceVersion"] = str(api.store.next_rv())
    typ = "MODIFIED"
    if (
        new["metadata"].get("deletionTimestamp")
        and not new["spec"]["finalizers"]
        and not new["metadata"].get("finalizers")
    ):
        typ = "DELETED"
    await api.store.commit([(typ, "/namespaces", ("", name), new)])
    return 200, orjson.dumps(new)
