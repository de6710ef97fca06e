"""Unknown- and duplicate-field handling (fieldValidation Ignore/Warn/Strict) and the few validations
clients notice. Unknown fields are dropped at any depth before storing, as decoding into Go types or
pruning against a CRD's structural schema does (the trees: fieldtree.py). Server-side apply bodies
go through the same check; a real server fails those with a 500 "field not declared in schema" from
its typed conversion instead, which is not reproduced here.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from runtime.apiserver.http.context import ApiRequest
from runtime.apiserver.http.status_errors import StatusError, bad_request, invalid
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.validation import rules
from runtime.apiserver.validation.duplicates import duplicate_fields
from runtime.apiserver.validation.fieldtree import (
    Node,
    Struct,
    builtin_tree,
    crd_tree,
    object_meta_tree,
    prune,
)
from runtime.apiserver.validation.schema import customresource, defaulting, structural

Obj = dict[str, Any]

PATCH_CONTENT_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def check_fields(ctx: ApiRequest, rt: ResourceType, obj: Obj) -> Obj:
    """Drop unknown fields at any depth, as decoding does; report them as fieldValidation asks:
    Strict fails the request (400 for a body, 422 for a patch), Warn adds one warning per field."""
    mode = ctx.query.get("fieldValidation", "Warn") or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise bad_request(f'fieldValidation parameter "{mode}" must be one of "Ignore", "Warn", or "Strict"')
    texts = [f'duplicate field "{d}"' for d in _duplicates(ctx, obj)] if mode != "Ignore" else []
    unknown: list[str] = []
    if rt.crd:
        if rt.schema is not None:
            prune(obj, crd_tree(rt.schema), "", unknown)
            unknown.sort()  # the apiextensions pruner sorts the paths it reports
        else:
            prune(obj, _root_meta(), "", unknown)
    else:
        prune(obj, builtin_tree(rt.group, rt.version, rt.kind), "", unknown)
    if mode != "Ignore":
        texts += [f'unknown field "{u}"' for u in unknown]
    check_decodable(rt, obj)
    if texts:
        if mode == "Warn":
            ctx.warnings.extend(texts)
        elif ctx.method == "PATCH" and ctx.content_type() in PATCH_CONTENT_TYPES:
            raise _strict_patch_error(obj, texts)
        else:
            raise bad_request(_cannot_handle(rt, obj, "strict decoding error: " + ", ".join(texts)))
    return obj


def _duplicates(ctx: ApiRequest, obj: Obj) -> list[str]:
    """Fields a JSON body (or merge/strategic patch) gives twice; YAML and protobuf bodies are not
    looked at."""
    ctype = ctx.content_type()
    if ctx.method in ("POST", "PUT") and ctype == "application/json":
        return duplicate_fields(ctx.body, obj)
    if ctx.method == "PATCH" and ctype in PATCH_CONTENT_TYPES[1:]:
        try:
            return duplicate_fields(ctx.body, orjson.loads(ctx.body))
        except orjson.JSONDecodeError:
            return []
    return []


def _cannot_handle(rt: ResourceType, obj: Obj, why: str) -> str:
    """transformDecodeError: `Deployment in version "v1" cannot be handled as a Deployment: …`."""
    kind = obj.get("kind") or rt.kind
    version = str(obj.get("apiVersion") or rt.api_version).rsplit("/", 1)[-1]
    return f'{kind} in version "{version}" cannot be handled as a {rt.kind}: {why}'


def _strict_patch_error(patched: Obj, texts: list[str]) -> StatusError:
    """The patch handlers' strict failure: 422 Invalid on field `patch`, the value the patched object."""
    value = orjson.dumps(patched).decode()
    why = "strict decoding error: " + ", ".join(texts)
    return invalid(
        "",
        "",
        "",
        [("patch", "FieldValueInvalid", f"patch: Invalid value: {orjson.dumps(value).decode()}: {why}")],
    )


@functools.lru_cache(maxsize=1)
def _root_meta() -> Node:
    """A custom resource without a schema: only its metadata is checked."""
    return Struct({"metadata": object_meta_tree()}, None)


def validate(rt: ResourceType, new: Obj, old: Obj | None, sub: str = "") -> None:
    """The built-in kinds' rules (rules/), a Pod's update restrictions and a CRD's own checks: every
    error found, in Kubernetes' order, as one 422."""
    name = (new.get("metadata") or {}).get("name", "")
    if rt.crd:
        if rt.schema is not None:
            errors = customresource.errors(rt.schema, new, old, sub)
            if errors:
                raise rules.invalid_error(rt.kind, rt.group, name, errors)
        return
    errors = rules.errors_for(rt.group, rt.kind, new, old, sub)
    if old is not None:
        errors = rules.update_meta_errors(rt.group, rt.kind, new, sub) + errors
    if rt.kind == "Pod" and not rt.group and old is not None and sub != "status":
        errors += _pod_update(old, new)
    if errors:
        # events.k8s.io Events are stored as the core group's (one internal type): errors name that
        group = "" if rt.group == "events.k8s.io" else rt.group
        raise rules.invalid_error(rt.kind, group, name, errors)
    if rt.kind == "CustomResourceDefinition":
        from runtime.apiserver.registry.crds import validate_crd

        validate_crd(new, [(e.field, e.reason, e.message()) for e in structural.crd_schema_errors(new)])


def default_custom(rt: ResourceType, obj: Obj) -> Obj:
    """A custom resource as its decoder leaves it: schema defaults in, non-nullable nulls out."""
    if rt.schema is not None:
        defaulting.default(obj, rt.schema)
    return obj


def check_decodable(rt: ResourceType, obj: Obj) -> None:
    """What the decoder refuses before any rule runs (an unparsable quantity, Secret data that is not
    base64): 400, worded as transformDecodeError."""
    if rt.crd:
        return
    why = rules.decode_error(rt.group, rt.kind, obj)
    if why:
        raise bad_request(_cannot_handle(rt, obj, why))


__all__ = ["StatusError", "check_decodable", "check_fields", "default_custom", "validate"]


POD_UPDATE_FORBIDDEN = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
    "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
    "previously negative)"
)


def _pod_update(old: Obj, new: Obj) -> list[rules.FieldError]:
    """ValidatePodUpdate: a pod's spec is immutable but for images, deadlines and added tolerations."""
    import copy

    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    if os_ == ns_:
        return []
    mutated = copy.deepcopy(ns_)
    for field in ("containers", "initContainers"):
        olds, news = os_.get(field) or [], mutated.get(field) or []
        if len(olds) == len(news):
            for o, n in zip(olds, news, strict=True):
                if isinstance(o, dict) and isinstance(n, dict) and "image" in o:
                    n["image"] = o["image"]
    if "activeDeadlineSeconds" in ns_:
        mutated["activeDeadlineSeconds"] = os_.get("activeDeadlineSeconds")
        if mutated["activeDeadlineSeconds"] is None:
            del mutated["activeDeadlineSeconds"]
    old_tol = os_.get("tolerations") or []
    new_tol = ns_.get("tolerations") or []
    if all(t in new_tol for t in old_tol):
        if old_tol:
            mutated["tolerations"] = old_tol
        else:
            mutated.pop("tolerations", None)
    return (
        [rules.forbidden("spec", POD_UPDATE_FORBIDDEN.removeprefix("spec: Forbidden: "))]
        if mutated != os_
        else []
    )
