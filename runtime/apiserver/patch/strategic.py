"""Strategic merge patch (application/strategic-merge-patch+json) with Kubernetes' merge keys.

kubectl (`patch`, `apply`, `edit`, `label`) and edgecore (node and pod status) send strategic merge
patches; the result depends on each field's patchStrategy/patchMergeKey struct tags and on the order
rules of apimachinery's strategicpatch (new list items go first unless `$setElementOrder` says
otherwise). This module follows that algorithm step by step, including Go's insertion sort, so the
merged lists come out in the same order as on a real cluster. Custom resources have no struct tags:
kube-apiserver refuses strategic merge for them with 415, and so does `apply_strategic_merge_patch`.
Here: the directives and the merge of maps and lists; the order of merged lists is in strategic_order.py,
Go's equality, sort and error rendering in strategic_go.py.
"""

from __future__ import annotations

import copy
from typing import Any

from runtime.apiserver.patch.jsonpatch import PatchError, normalize_meta
from runtime.apiserver.patch.patchmeta import (
    KIND_SCHEMA,
    SCHEMAS,
    UNSUPPORTED_MEDIA,
    supports_strategic_merge,
)
from runtime.apiserver.patch.strategic_go import bad_type, go_equal, go_repr, no_merge_key
from runtime.apiserver.patch.strategic_order import (
    DIRECTIVE,
    index_of,
    normalize_element_order,
    partition,
    validate_order,
)

__all__ = [
    "KIND_SCHEMA",
    "SCHEMAS",
    "apply_strategic_merge_patch",
    "strip_directives",
    "supports_strategic_merge",
]

_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIM = "$deleteFromPrimitiveList/"


class _Schema:
    def __init__(self, name: str | None) -> None:
        self.fields = SCHEMAS.get(name or "", {})
        self.name = name

    def lookup(self, key: str) -> tuple[str, str, _Schema]:
        strategy, merge_key, sub = self.fields.get(key, ("", "", None))
        return strategy, merge_key, _Schema(sub)


def _strategy(raw: str) -> str:
    parts = [p for p in raw.split(",") if p and p != "retainKeys"]
    return parts[0] if parts else ""


def _is_map_list(*lists: list[Any]) -> bool:
    kind: type | None = None
    for lst in lists:
        for v in lst:
            t = dict if isinstance(v, dict) else list if isinstance(v, list) else type(v)
            if kind is None:
                if t is list:
                    raise PatchError("lists of lists are not supported", 422)
                kind = t
            elif t is not kind and not (t in (int, float) and kind in (int, float)):
                raise PatchError(f"list element types are not identical: {go_repr(list(lists))}", 500)
    if kind is None:
        raise PatchError("no elements in any of the given slices", 500)
    return kind is dict


def _dedupe(items: list[Any]) -> list[Any]:
    """deduplicateScalars, including its swap-with-last quirk."""
    s = list(items)
    length = len(s) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if go_equal(s[i], s[j]):
                s[j] = s[length]
                s = s[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return s


def _merge_slice(
    original: list[Any], patch: list[Any], schema: _Schema, merge_key: str, delete_list: bool
) -> list[Any]:
    if not original and not patch:
        return original
    is_map = _is_map_list(original, patch)
    if not is_map:
        if delete_list:
            return [v for v in original if not any(go_equal(v, d) for d in patch)]
        merged = _dedupe(original + patch)
    else:
        if not merge_key:
            raise PatchError("cannot merge lists without merge key for type map", 500)
        original, patch = _special_elements(original, patch, merge_key)
        merged = list(original)
        for v in patch:
            if merge_key not in v:
                raise no_merge_key(v, merge_key)
            idx = index_of(merged, v, merge_key, True)
            if idx >= 0:
                merged[idx] = _merge_map(merged[idx], v, schema)
            else:
                merged.append(v)
    patch_items, server_only = partition(merged, patch, merge_key)
    return normalize_element_order(patch_items, server_only, patch, original, merge_key, is_map)


def _special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    rest: list[Any] = []
    replace = False
    for v in patch:
        if not isinstance(v, dict):
            raise bad_type("map[string]interface {}", v)
        if DIRECTIVE not in v:
            rest.append(v)
            continue
        directive = v[DIRECTIVE]
        if directive == "delete":
            if merge_key not in v:
                raise no_merge_key(v, merge_key)
            original = [
                o for o in original if not (isinstance(o, dict) and go_equal(o.get(merge_key), v[merge_key]))
            ]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch", 500)
        else:
            raise PatchError(f"unknown patch type: {directive} in map: {go_repr(v)}", 500)
    if replace:
        return rest, []
    return original, rest


def _merge_slice_handler(
    original: Any, patch: Any, schema: _Schema, strategy: str, merge_key: str, delete_list: bool
) -> list[Any]:
    if not isinstance(original, list):
        raise bad_type("[]interface {}", original)
    if not isinstance(patch, list):
        raise bad_type("[]interface {}", patch)
    if strategy == "merge":
        return _merge_slice(original, patch, schema, merge_key, delete_list)
    return patch


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if _RETAIN not in patch:
        return
    keys = patch.pop(_RETAIN)
    if not isinstance(keys, list):
        raise PatchError("invalid patch format of retainKeys", 400)
    for k, v in patch.items():
        if v is None or k.startswith((_DELETE_PRIM, _ORDER)):
            continue
        if k not in keys:
            raise PatchError("invalid patch format of retainKeys", 400)
    for k in list(original):
        if k not in keys:
            del original[k]


def _set_element_order(original: dict[str, Any], patch: dict[str, Any], schema: _Schema) -> None:
    for key in [k for k in patch if k.startswith("$setElementOrder")]:
        order = patch.pop(key)
        if not key.startswith(_ORDER) or len(key) == len(_ORDER):
            raise PatchError("invalid patch format of setElementOrder list", 400)
        if not isinstance(order, list):
            raise PatchError("invalid patch format of setElementOrder list", 400)
        field = key[len(_ORDER) :]
        found_orig, found_patch = field in original, field in patch
        orig_list = original.get(field) if found_orig else []
        patch_list = patch.get(field) if found_patch else []
        if not isinstance(orig_list, list) or not isinstance(patch_list, list):
            raise bad_type("[]interface {}", orig_list if not isinstance(orig_list, list) else patch_list)
        raw, merge_key, sub = schema.lookup(field)
        strategy = _strategy(raw)
        validate_order(patch_list, order, merge_key)
        if found_orig and not found_patch:
            merged = orig_list
        elif found_patch and not found_orig:
            merged = patch_list
        elif found_orig and found_patch:
            merged = _merge_slice_handler(orig_list, patch_list, sub, strategy, merge_key, False)
        else:
            continue
        inside, outside = partition(merged, order, merge_key)
        is_map = _is_map_list(orig_list, patch_list) if (orig_list or patch_list) else bool(merge_key)
        original[field] = normalize_element_order(inside, outside, order, orig_list, merge_key, is_map)
        patch.pop(field, None)


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], schema: _Schema) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == "replace":
            return {k: v for k, v in patch.items() if k != DIRECTIVE}
        if directive == "delete":
            return {}
        raise PatchError(f"unknown patch type: {directive} in map: {go_repr(patch)}", 500)
    original = {} if original is None else original
    _apply_retain_keys(original, patch)
    _set_element_order(original, patch, schema)
    for key, pv in list(patch.items()):
        delete_list = False
        if key.startswith("$deleteFromPrimitiveList"):
            if not key.startswith(_DELETE_PRIM) or len(key) == len(_DELETE_PRIM):
                raise PatchError("invalid patch format of primitive list", 400)
            key = key[len(_DELETE_PRIM) :]
            delete_list = True
        if pv is None:
            original.pop(key, None)
            continue
        if key not in original:
            if not delete_list:
                original[key] = pv
            continue
        ov = original[key]
        if type(ov) is not type(pv) and not (isinstance(ov, (int, float)) and isinstance(pv, (int, float))):
            if not delete_list:
                original[key] = pv
            continue
        raw, merge_key, sub = schema.lookup(key)
        strategy = _strategy(raw)
        if isinstance(ov, dict):
            original[key] = pv if strategy == "replace" else _merge_map(ov, pv, sub)
        elif isinstance(ov, list):
            original[key] = _merge_slice_handler(ov, pv, sub, strategy, merge_key, delete_list)
        else:
            original[key] = pv
    return original


# Time fields a typed server always serialises (as null when unset): metav1.Time is a struct.

_NULL_TIMES = {"lastProbeTime", "lastTransitionTime", "lastHeartbeatTime", "creationTimestamp"}


def strip_directives(v: Any) -> Any:
    """What decoding into the Go struct does to leftovers: `$` keys vanish, nulls become zero values
    (omitted), except metav1.Time fields, which encode their zero value as null."""
    if isinstance(v, dict):
        return {
            k: strip_directives(x)
            for k, x in v.items()
            if not k.startswith("$") and (x is not None or k in _NULL_TIMES)
        }
    if isinstance(v, list):
        return [strip_directives(x) for x in v]
    return v


def apply_strategic_merge_patch(
    obj: dict[str, Any], patch: dict[str, Any], kind: str, api_version: str
) -> dict[str, Any]:
    """StrategicMergeMapPatch(obj, patch) for the struct of `kind`; the inputs are not modified.

    Raises PatchError with the HTTP code kube-apiserver answers: 415 for custom resources, 400 for
    malformed directives, 500 for patches the merge code itself rejects (as a real server does).
    """
    if not supports_strategic_merge(api_version):
        raise PatchError(UNSUPPORTED_MEDIA, 415)
    if not isinstance(patch, dict):
        raise PatchError("json: cannot unmarshal array into Go value of type map[string]interface {}", 400)
    schema = _Schema(KIND_SCHEMA.get(kind, "Object"))
    merged = _merge_map(copy.deepcopy(obj), copy.deepcopy(patch), schema)
    out = strip_directives(merged)
    assert isinstance(out, dict)
    return normalize_meta(out)
