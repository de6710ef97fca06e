"""A custom resource's write checked as apiextensions' strategy checks it: the OpenAPI schema
(values.py), the list-type set/map invariants, then the CEL rules (rules.py) — unless an earlier error
is one that makes them pointless (required, type, too long, too many: `hasBlockingErr` of 1.28), in
which case one `<nil>` error says so instead.

The compiled form of a schema (its rules, and which subtrees hold any) is built once per schema dict
and kept while the CRD is served (a CRD update brings a new dict)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from runtime.apiserver.validation.fieldtree import SchemaKey
from runtime.apiserver.validation.rules.fielderrors import FieldError, go_value
from runtime.apiserver.validation.schema import values
from runtime.apiserver.validation.schema.nodes import node_for
from runtime.apiserver.validation.schema.rules import Compiled, CompileError, compile_rule, evaluate

Obj = dict[str, Any]
_ABSENT: Any = object()
_BLOCKING = {"FieldValueRequired", "FieldValueTooLong", "FieldValueTooMany", "FieldValueTypeInvalid"}
NOT_CHECKED = FieldError(
    "<nil>",
    "FieldValueInvalid",
    'Invalid value: "null": some validation rules were not checked because the object was invalid; '
    "correct the existing errors to complete validation",
)


@dataclass
class CompiledSchema:
    schema: Obj
    rules: dict[int, list[Compiled]] = field(default_factory=dict)  # by id() of the schema node
    with_rules: set[int] = field(default_factory=set)  # ids of nodes at or above a rule


def compiled(schema: Obj) -> CompiledSchema:
    return _compiled(SchemaKey(schema))


@functools.lru_cache(maxsize=256)
def _compiled(key: SchemaKey) -> CompiledSchema:
    out = CompiledSchema(key.schema)
    _collect(key.schema, out)
    return out


def _collect(s: Any, out: CompiledSchema) -> bool:
    if not isinstance(s, dict):
        return False
    found = False
    rules = s.get("x-kubernetes-validations")
    if rules:
        out.rules[id(s)] = [c for c in map(_compile_stored, rules) if c is not None]
        found = True
    for sub in (s.get("properties") or {}).values():
        found = _collect(sub, out) or found
    for key in ("items", "additionalProperties"):
        found = _collect(s.get(key), out) or found
    if found:
        out.with_rules.add(id(s))
    return found


def _compile_stored(rule: Any) -> Compiled | None:
    """A rule of a served CRD; one that does not compile (stored before rules were checked) is
    skipped, as its CRD could not be created today."""
    if not isinstance(rule, dict):
        return None
    try:
        return compile_rule(rule)
    except CompileError:
        return None


def errors(schema: Obj, new: Obj, old: Obj | None, sub: str) -> list[FieldError]:
    """Every error of a create or update (`old` None on create); `sub` "status" checks the status
    against its own schema, with paths below it (`phase`, not `status.phase`), as the real server."""
    errs: list[FieldError] = []
    root = node_for(schema)
    if sub == "status":
        status = root.props.get("status")
        if "status" in new and status is not None:
            values.validate(new["status"], status, "", errs)
    else:
        values.validate(new, root, "", errs)
    values.list_sets_and_maps(new, root, "", errs)
    cs = compiled(schema)
    if cs.rules:
        if any(e.reason in _BLOCKING for e in errs):
            errs.append(NOT_CHECKED)
        else:
            _cel(new, schema, old if old is not None else _ABSENT, "", cs, errs)
    return errs


def _cel(v: Any, s: Obj, old: Any, path: str, cs: CompiledSchema, errs: list[FieldError]) -> None:
    if v is None:
        return
    for c in cs.rules.get(id(s), ()):
        if c.uses_old_self and old is _ABSENT:
            continue  # a transition rule: only when there is an old value to compare with
        ok, detail = evaluate(c, v, None if old is _ABSENT else old)
        if not ok:
            errs.append(_rule_error(path, s, c.rule, detail))
    if isinstance(v, dict):
        props = s.get("properties") or {}
        addl = s.get("additionalProperties")
        olds = old if isinstance(old, dict) else {}
        for k, x in v.items():
            child = props.get(k, addl if isinstance(addl, dict) else None)
            if child is not None and id(child) in cs.with_rules:
                _cel(x, child, olds.get(k, _ABSENT), f"{path}.{k}" if path else k, cs, errs)
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict) and id(items) in cs.with_rules:
            correlate = _correlator(s, old)
            for i, x in enumerate(v):
                _cel(x, items, correlate(x), f"{path}[{i}]", cs, errs)


def _correlator(s: Obj, old: Any) -> Any:
    """Old items of a list-type map, found by their keys; no other list's items are correlated."""
    keys = s.get("x-kubernetes-list-map-keys") or []
    if s.get("x-kubernetes-list-type") != "map" or not keys or not isinstance(old, list):
        return lambda _item: _ABSENT
    by_key = {tuple(str(o.get(k)) for k in keys): o for o in old if isinstance(o, dict)}
    return lambda item: (
        by_key.get(tuple(str(item.get(k)) for k in keys), _ABSENT) if isinstance(item, dict) else _ABSENT
    )


def _rule_error(path: str, s: Obj, rule: Obj, detail: str) -> FieldError:
    fp = str(rule.get("fieldPath") or "")
    if fp:
        fp = fp.lstrip(".")
        path = f"{path}.{fp}" if path else fp
    where = path or "<nil>"
    kind = str(s.get("type") or "")
    reason = rule.get("reason")
    if reason == "FieldValueForbidden":
        return FieldError(where, reason, f"Forbidden: {detail}")
    if reason == "FieldValueRequired":
        return FieldError(where, reason, f"Required value: {detail}")
    if reason == "FieldValueDuplicate":
        return FieldError(where, reason, f"Duplicate value: {go_value(kind)}")
    return FieldError(where, "FieldValueInvalid", f"Invalid value: {go_value(kind)}: {detail}")
