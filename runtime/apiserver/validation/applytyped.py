"""Server-side apply's typed conversion: the applied configuration is converted to the kind's type
(structured-merge-diff) before anything else, and a field the type does not declare or a number
field given something else fails the request with a 500 and no reason, as kube-apiserver answers:
`failed to create typed patch object (<ns>/<name>; <group>/<version>, Kind=<kind>): .bogus: field not
declared in schema`. Whatever fieldValidation says: the conversion knows no other mode.

String and boolean mismatches are left to validation (422): structured-merge-diff prints those
values as Go structures of its own that are not reproduced here."""

from __future__ import annotations

from typing import Any

from runtime.apiserver.admission.defaults import json_copy
from runtime.apiserver.http.status_errors import StatusError
from runtime.apiserver.registry.resources import ResourceType
from runtime.apiserver.validation.fieldtree import prune

Obj = dict[str, Any]


def check_apply(rt: ResourceType, applied: Obj, tree: Any) -> None:
    """Raise the typed-conversion failure for `applied`, if any (`tree`: the kind's field tree)."""
    unknown: list[str] = []
    prune(json_copy(applied), tree, "", unknown)
    errors = [f".{u}: field not declared in schema" for u in unknown]
    if rt.crd and rt.schema is not None:
        _numbers(applied, rt.schema, "", errors)
    if not errors:
        return
    meta = applied.get("metadata") or {}
    where = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
    gv = f"{rt.group}/{rt.version}"
    text = errors[0] if len(errors) == 1 else "errors:\n" + "\n".join("  " + e for e in errors)
    raise StatusError(500, "", f"failed to create typed patch object ({where}; {gv}, Kind={rt.kind}): {text}")


_GO_TYPES = {str: "string", bool: "bool", dict: "map[string]interface {}", list: "[]interface {}"}


def _numbers(v: Any, s: Obj, path: str, errors: list[str]) -> None:
    if isinstance(v, dict):
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k, x in v.items():
            sub = props.get(k, addl if isinstance(addl, dict) else None)
            if isinstance(sub, dict):
                _numbers(x, sub, f"{path}.{k}", errors)
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, x in enumerate(v):
                _numbers(x, items, f"{path}[{i}]", errors)
    if s.get("type") in ("integer", "number") and not s.get("x-kubernetes-int-or-string"):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            errors.append(f"{path}: expected numeric (int or float), got {_GO_TYPES.get(type(v), 'string')}")
