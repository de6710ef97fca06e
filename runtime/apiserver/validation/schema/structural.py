"""A CRD's own schemas checked on create and update, as apiextensions validates them: structural
(every specified field typed, nothing typed inside anyOf/allOf/oneOf/not), no uniqueItems, no
properties beside additionalProperties, defaults that pass their own schema, rules that compile, and
no `preserveUnknownFields: true` in v1.

Paths are the internal type's: when every version has the same schema the real server hoists it to
`spec.validation.openAPIV3Schema`, otherwise each is `spec.versions[i].schema.openAPIV3Schema`."""

from __future__ import annotations

from typing import Any

import orjson

from runtime.apiserver.validation.rules.fielderrors import FieldError, go_value
from runtime.apiserver.validation.schema import values
from runtime.apiserver.validation.schema.rules import CompileError, compile_expression

Obj = dict[str, Any]

_ROOT, _FIELD, _ITEM = "root", "field", "item"
_TYPE_REQUIRED = {
    _ROOT: "must not be empty at the root",
    _FIELD: "must not be empty for specified object fields",
    _ITEM: "must not be empty for specified array items",
}
# Inside anyOf/allOf/oneOf/not: what a structural schema may only say outside them.
_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be undefined to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
)


def crd_schema_errors(crd: Obj) -> list[FieldError]:
    spec = crd.get("spec") or {}
    errs: list[FieldError] = []
    if spec.get("preserveUnknownFields") is True:
        errs.append(
            FieldError(
                "spec.preserveUnknownFields",
                "FieldValueInvalid",
                "Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true "
                "in spec.versions[*].schema instead",
            )
        )
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") for v in versions]
    if schemas and all(orjson.dumps(s) == orjson.dumps(schemas[0]) for s in schemas):
        if isinstance(schemas[0], dict):
            _node(schemas[0], "spec.validation.openAPIV3Schema", _ROOT, errs)
    else:
        for i, s in enumerate(schemas):
            if isinstance(s, dict):
                _node(s, f"spec.versions[{i}].schema.openAPIV3Schema", _ROOT, errs)
    return errs


def _combinators(s: Obj, path: str) -> list[tuple[Obj, str]]:
    """The schemas inside allOf/anyOf/oneOf/not, with their paths."""
    out = [
        (sub, f"{path}.{key}[{i}]")
        for key in ("allOf", "anyOf", "oneOf")
        for i, sub in enumerate(s.get(key) or [])
        if isinstance(sub, dict)
    ]
    if isinstance(s.get("not"), dict):
        out.append((s["not"], f"{path}.not"))
    return out


def _node(s: Obj, path: str, level: str, errs: list[FieldError]) -> None:
    for sub, where in _combinators(s, path):
        _nested(sub, where, errs)
    items = s.get("items")
    if s.get("type") == "array" and not isinstance(items, dict):
        errs.append(FieldError(f"{path}.items", "FieldValueRequired", "Required value: must be specified"))
    if isinstance(items, dict):
        _node(items, f"{path}.items", _ITEM, errs)
    _children(s, path, errs)
    props, addl = s.get("properties"), s.get("additionalProperties")
    if props and addl is not None and addl is not False:
        errs.append(
            FieldError(
                f"{path}.additionalProperties",
                "FieldValueForbidden",
                "Forbidden: additionalProperties and properties are mutual exclusive",
            )
        )
    if s.get("uniqueItems") is True:
        errs.append(
            FieldError(
                f"{path}.uniqueItems",
                "FieldValueForbidden",
                "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    exempt = (
        s.get("x-kubernetes-int-or-string")
        or s.get("x-kubernetes-embedded-resource")
        or s.get("x-kubernetes-preserve-unknown-fields")
    )
    if not s.get("type") and not exempt:
        errs.append(
            FieldError(f"{path}.type", "FieldValueRequired", f"Required value: {_TYPE_REQUIRED[level]}")
        )
    if "default" in s:
        _default(s, path, level, errs)
    for i, rule in enumerate(s.get("x-kubernetes-validations") or []):
        if isinstance(rule, dict):
            _rule(rule, f"{path}.x-kubernetes-validations[{i}]", errs)


def _children(s: Obj, path: str, errs: list[FieldError]) -> None:
    for k, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            _node(sub, f"{path}.properties[{k}]", _FIELD, errs)
    addl = s.get("additionalProperties")
    if isinstance(addl, dict):
        _node(addl, f"{path}.additionalProperties", _FIELD, errs)


def _nested(s: Obj, path: str, errs: list[FieldError]) -> None:
    for sub, where in _combinators(s, path):
        _nested(sub, where, errs)
    if isinstance(s.get("items"), dict):
        _nested(s["items"], f"{path}.items", errs)
    for k, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            _nested(sub, f"{path}.properties[{k}]", errs)
    for key, why in _NESTED_FORBIDDEN:
        if s.get(key) not in (None, False, "", []):
            reason = "FieldValueForbidden"
            errs.append(FieldError(f"{path}.{key}", reason, f"Forbidden: {why}"))


def _default(s: Obj, path: str, level: str, errs: list[FieldError]) -> None:
    where = f"{path}.default"
    if level == _ROOT:
        errs.append(FieldError(where, "FieldValueForbidden", "Forbidden: must not be set at the root"))
        return
    found: list[FieldError] = []
    values.validate(s["default"], s, "", found)
    for e in found:
        errs.append(FieldError(f"{where}.{e.field}" if e.field else where, e.reason, e.detail))


def _rule(rule: Obj, path: str, errs: list[FieldError]) -> None:
    shown = _go_rule(rule)
    try:
        compile_expression(str(rule.get("rule", "")))
    except CompileError as exc:
        errs.append(
            FieldError(
                f"{path}.rule", "FieldValueInvalid", f"Invalid value: {shown}: compilation failed: {exc}"
            )
        )
    expr = rule.get("messageExpression")
    if expr:
        try:
            compile_expression(str(expr))
        except CompileError as exc:
            errs.append(
                FieldError(
                    f"{path}.messageExpression",
                    "FieldValueInvalid",
                    f"Invalid value: {shown}: messageExpression compilation failed: {exc}",
                )
            )


def _go_rule(rule: Obj) -> str:
    """%#v of apiextensions.ValidationRule; a set reason is a pointer, printed as an address."""
    reason = rule.get("reason")
    ptr = "nil" if reason is None else "0xc000010000"
    return (
        f"apiextensions.ValidationRule{{Rule:{go_value(str(rule.get('rule', '')))}, "
        f"Message:{go_value(str(rule.get('message') or ''))}, "
        f"MessageExpression:{go_value(str(rule.get('messageExpression') or ''))}, "
        f"Reason:(*apiextensions.FieldValueErrorReason)({ptr}), "
        f"FieldPath:{go_value(str(rule.get('fieldPath') or ''))}}}"
    )
