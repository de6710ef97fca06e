"""A custom resource against its structural schema: every error kube-openapi's validator finds, as the
field errors apiextensions' ValidateCustomResource turns them into.

A small walker rather than a JSON-schema library: the real server's causes are go-openapi's messages
(`spec.size in body should be greater than or equal to 1`) mapped to field.Error types by error code
(type → FieldValueTypeInvalid, required → FieldValueRequired, enum → FieldValueNotSupported, maxItems →
FieldValueTooMany, maxLength → FieldValueTooLong, every other one FieldValueInvalid with the value).
A JSON-schema engine reports in its own words and types and would need a second mapping of each of
its errors back to these; the walk is shorter than that mapping and visits each value once.

Order within one value, as go-openapi's SchemaValidator runs its validators: type, string (maxLength,
minLength, pattern), format, number (multipleOf, maximum, minimum), array (items, minItems, maxItems),
enum, object (additionalProperties, properties, required). Properties are visited in the object's
order; the real server iterates a Go map there, so clients compare such causes as a set.
"""

from __future__ import annotations

from typing import Any

import orjson

from runtime.apiserver.validation.rules.fielderrors import FieldError, GoText, go_value
from runtime.apiserver.validation.schema import formats
from runtime.apiserver.validation.schema.nodes import Node

Obj = dict[str, Any]


def type_name(v: Any) -> str:
    """The JSON type kube-openapi infers from a decoded value (floats are "number", even 2.0)."""
    if v is None:
        return "null"
    if v is True or v is False:
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def go_number(n: Any) -> str:
    """%v of a float64 limit from the schema: 1.0 prints as 1."""
    if isinstance(n, float) and n.is_integer() and abs(n) < 1e21:
        return str(int(n))
    return str(n)


def _type_ok(actual: str, v: Any, types: tuple[str, ...]) -> bool:
    if actual in types:
        return True
    if actual == "number" and "integer" in types and float(v).is_integer():
        return True
    return actual == "integer" and "number" in types


def validate(v: Any, s: Obj | Node, path: str, errs: list[FieldError]) -> None:
    """Append every error of `v` against schema `s` (a dict, or a node compiled from one); `path` is
    the value's field path ("" at the root of what is validated)."""
    _check(v, s if isinstance(s, Node) else Node(s), path, errs)


_SIMPLE = {str: "string", bool: "boolean", int: "integer", float: "number", dict: "object", list: "array"}


def _check(v: Any, n: Node, path: str, errs: list[FieldError]) -> None:
    if v is None:
        if n.types and not n.nullable:
            errs.append(_type_error(path, "null", n.types))
        return
    actual = _SIMPLE.get(type(v)) or type_name(v)
    if n.types and actual not in n.types and not _type_ok(actual, v, n.types):
        errs.append(_type_error(path, actual, n.types))
    if actual == "object":
        if n.enum is not None and v not in n.enum:
            errs.append(_not_supported(path, v, n.enum))
        if n.object_checks:
            _object(v, n, path, errs)
        return
    if actual == "string":
        if n.string_checks:
            _string(v, n, path, errs)
    elif actual == "array":
        if n.items is not None or n.array_checks:
            _array(v, n, path, errs)
    elif actual != "boolean" and n.number_checks:
        _number(v, n.s, path, errs)
    if n.enum is not None and v not in n.enum:
        errs.append(_not_supported(path, v, n.enum))


def _type_error(path: str, actual: str, types: tuple[str, ...]) -> FieldError:
    text = f"{path} in body must be of type {','.join(types)}: {go_value(actual)}"
    return FieldError(path, "FieldValueTypeInvalid", f"Invalid value: {go_value(actual)}: {text}")


def invalid(path: str, value: Any, text: str) -> FieldError:
    return FieldError(path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {text}")


def _not_supported(path: str, v: Any, enum: list[Any]) -> FieldError:
    allowed = ", ".join(go_value(e if isinstance(e, str) else orjson.dumps(e).decode()) for e in enum)
    return FieldError(
        path,
        "FieldValueNotSupported",
        f"Unsupported value: {go_value(_go_any(v))}: supported values: {allowed}",
    )


def _go_any(v: Any) -> Any:
    """A map or list printed as Go's %#v of interface{} would be too verbose to match; JSON instead."""
    return GoText(orjson.dumps(v).decode()) if isinstance(v, dict | list) else v


def _string(v: str, n: Node, path: str, errs: list[FieldError]) -> None:
    s = n.s
    max_len = s.get("maxLength")
    if max_len is not None and len(v) > max_len:
        errs.append(FieldError(path, "FieldValueTooLong", f"Too long: may not be longer than {max_len}"))
    min_len = s.get("minLength")
    if min_len is not None and len(v) < min_len:
        errs.append(invalid(path, v, f"{path} in body should be at least {min_len} chars long"))
    if n.pattern is not None and n.pattern.search(v) is None:
        errs.append(invalid(path, v, f"{path} in body should match '{s['pattern']}'"))
    fmt = s.get("format")
    if fmt and not formats.valid(fmt, v):
        errs.append(
            FieldError(
                path,
                "FieldValueTypeInvalid",
                f"Invalid value: {go_value(v)}: {path} in body must be of type {fmt}: {go_value(v)}",
            )
        )


def _number(v: float, s: Obj, path: str, errs: list[FieldError]) -> None:
    mult = s.get("multipleOf")
    if mult and (v / mult) != int(v / mult):
        errs.append(invalid(path, v, f"{path} in body should be a multiple of {go_number(mult)}"))
    hi = s.get("maximum")
    if hi is not None:
        if s.get("exclusiveMaximum") and v >= hi:
            errs.append(invalid(path, v, f"{path} in body should be less than {go_number(hi)}"))
        elif v > hi:
            errs.append(invalid(path, v, f"{path} in body should be less than or equal to {go_number(hi)}"))
    lo = s.get("minimum")
    if lo is not None:
        if s.get("exclusiveMinimum") and v <= lo:
            errs.append(invalid(path, v, f"{path} in body should be greater than {go_number(lo)}"))
        elif v < lo:
            errs.append(
                invalid(path, v, f"{path} in body should be greater than or equal to {go_number(lo)}")
            )


def _array(v: list[Any], n: Node, path: str, errs: list[FieldError]) -> None:
    if n.items is not None:
        for i, item in enumerate(v):
            _check(item, n.items, f"{path}[{i}]", errs)
    lo = n.s.get("minItems")
    if lo is not None and len(v) < lo:
        errs.append(invalid(path, len(v), f"{path} in body should have at least {lo} items"))
    hi = n.s.get("maxItems")
    if hi is not None and len(v) > hi:
        errs.append(
            FieldError(path, "FieldValueTooMany", f"Too many: {len(v)}: must have at most {hi} items")
        )


def _object(v: Obj, n: Node, path: str, errs: list[FieldError]) -> None:
    s = n.s
    count = len(v)
    lo, hi = s.get("minProperties"), s.get("maxProperties")
    if lo is not None and count < lo:
        errs.append(invalid(path, count, f"{path} in body should have at least {lo} properties"))
    if hi is not None and count > hi:
        errs.append(FieldError(path, "FieldValueTooMany", f"Too many: {count}: must have at most {hi} items"))
    props, addl = n.props, n.addl
    prefix = f"{path}." if path else ""
    if addl is not None:
        for k, item in v.items():
            if k not in props:
                _check(item, addl, prefix + k, errs)
    if props:
        for k, item in v.items():
            sub = props.get(k)
            if sub is not None:
                _check(item, sub, prefix + k, errs)
    for k in n.required:
        if k not in v:
            errs.append(FieldError(prefix + k, "FieldValueRequired", "Required value"))


# x-kubernetes-list-type set / map: structurallisttype.ValidateListSetsAndMaps, after the schema pass.


def list_sets_and_maps(v: Any, n: Node, path: str, errs: list[FieldError]) -> None:
    if not n.has_lists:
        return
    if isinstance(v, dict):
        prefix = f"{path}." if path else ""
        for k, item in v.items():
            sub = n.props.get(k, n.addl)
            if sub is not None and sub.has_lists:
                list_sets_and_maps(item, sub, prefix + k, errs)
    elif isinstance(v, list):
        if n.list_type == "set":
            _duplicates(v, path, errs, lambda item: item)
        elif n.list_type == "map":
            keys = n.list_keys
            _duplicates(v, path, errs, lambda item: _map_key(item, keys), map_keys=keys)
        if n.items is not None and n.items.has_lists:
            for i, item in enumerate(v):
                list_sets_and_maps(item, n.items, f"{path}[{i}]", errs)


def _map_key(item: Any, keys: list[str]) -> Any:
    if not isinstance(item, dict):
        return None
    return {k: item[k] for k in keys if k in item}


def _duplicates(
    v: list[Any], path: str, errs: list[FieldError], key: Any, map_keys: list[str] | None = None
) -> None:
    seen: set[bytes] = set()
    for i, item in enumerate(v):
        k = key(item)
        text = orjson.dumps(k, option=orjson.OPT_SORT_KEYS)
        if text in seen:
            shown = _go_map(k) if map_keys is not None else go_value(_go_any(k))
            errs.append(FieldError(f"{path}[{i}]", "FieldValueDuplicate", f"Duplicate value: {shown}"))
        else:
            seen.add(text)


def _go_map(k: Any) -> str:
    """%#v of a map[string]interface{}: keys sorted, strings quoted, numbers bare."""
    if not isinstance(k, dict):
        return go_value(k)
    inner = ", ".join(f"{go_value(name)}:{go_value(val)}" for name, val in sorted(k.items()))
    return "map[string]interface {}{" + inner + "}"
