"""Unknown- and duplicate-field handling (fieldValidation Ignore/Warn/Strict) and the few validations
clients notice. Unknown fields are dropped at any depth before storing, as decoding into Go types or
pruning against a CRD's structural schema does (the trees: fieldtree.py). Server-side apply bodies
go through the same check; a real server fails those with a 500 "field not declared in schema" from
its typed conversion instead, which is not reproduced here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import orjson

from runtime.apiserver.http.context import ApiRequest
from runtime.apiserver.http.status_errors import StatusError, bad_request, invalid
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.validation import applytyped, rules
from runtime.apiserver.validation.duplicates import duplicate_fields
from runtime.apiserver.validation.fieldtree import (
    Node,
    Struct,
    builtin_tree,
    crd_tree,
    object_meta_tree,
    prune,
)
from runtime.apiserver.validation.rules.gocmpdiff import cmp_diff
from runtime.apiserver.validation.schema import customresource, defaulting, structural

Obj = dict[str, Any]

PATCH_CONTENT_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def check_fields(
    ctx: ApiRequest, rt: ResourceType, obj: Obj, patch_value: Callable[[], str] | None = None
) -> Obj:
    """Drop unknown fields at any depth, as decoding does; report them as fieldValidation asks:
    Strict fails the request (400 for a body, 422 for a patch, whose refused value is `patch_value`
    when the caller has the real server's rendering of it), Warn adds one warning per field."""
    mode = ctx.query.get("fieldValidation", "Warn") or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise _bad_field_validation(ctx, mode)
    texts = [f'duplicate field "{d}"' for d in _duplicates(ctx, obj)] if mode != "Ignore" else []
    unknown: list[str] = []
    prune(obj, _tree(rt), "", unknown)
    if rt.crd:
        unknown.sort()  # the apiextensions pruner sorts the paths it reports
    if mode != "Ignore":
        texts += [f'unknown field "{u}"' for u in unknown]
    check_decodable(rt, obj)
    if texts:
        if mode == "Warn":
            ctx.warnings.extend(texts)
        elif ctx.method == "PATCH" and ctx.content_type() in PATCH_CONTENT_TYPES:
            raise _strict_patch_error(obj if patch_value is None else patch_value(), texts)
        else:
            raise bad_request(_cannot_handle(rt, obj, "strict decoding error: " + ", ".join(texts)))
    return obj


_OPTIONS = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions"}


def _bad_field_validation(ctx: ApiRequest, mode: str) -> StatusError:
    """The request options' validation (ValidateCreateOptions, …): 422 on `<Verb>Options.meta.k8s.io`."""
    why = (
        f"fieldValidation: Unsupported value: {orjson.dumps(mode).decode()}: "
        'supported values: "", "Ignore", "Strict", "Warn"'
    )
    kind = _OPTIONS.get(ctx.method, "CreateOptions")
    return invalid(kind, "", "meta.k8s.io", [("fieldValidation", "FieldValueNotSupported", why)])


def check_apply_fields(ctx: ApiRequest, rt: ResourceType, applied: Obj) -> Obj:
    """An apply body: the typed conversion's 500 for undeclared fields and mistyped numbers
    (applytyped.py), then what check_fields does for every body."""
    applytyped.check_apply(rt, applied, _tree(rt))
    return check_fields(ctx, rt, applied)


def _tree(rt: ResourceType) -> Node:
    """The field tree unknown fields are found with: the CRD's schema, or the built-in type."""
    if rt.crd:
        return crd_tree(rt.schema) if rt.schema is not None else _root_meta()
    return builtin_tree(rt.group, rt.version, rt.kind)


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


def _strict_patch_error(patched: Obj | str, texts: list[str]) -> StatusError:
    """The patch handlers' strict failure: 422 Invalid on field `patch`, the value the patched object."""
    value = patched if isinstance(patched, str) else orjson.dumps(patched).decode()
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
    if mutated == os_:
        return []
    # the real message goes on with go-cmp's diff of the old spec and the new one with its allowed
    # changes undone; the internal PodSpec always holds a SecurityContext (v1 conversion allocates it)
    diff = cmp_diff({"securityContext": {}, **os_}, {"securityContext": {}, **mutated}, "core.PodSpec")
    return [rules.forbidden("spec", POD_UPDATE_FORBIDDEN.removeprefix("spec: Forbidden: ") + "\n" + diff)]
