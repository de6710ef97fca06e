"""The order of merged lists in strategic merge patch, as apimachinery's strategicpatch computes it.

A merged list is not simply "old items then new ones": patch items are sorted by `$setElementOrder`
(or their order in the patch), items only the server had keep their server order, and the two runs
are interleaved by server position (normalizeElementOrder, mergeSortedSlice). kubectl shows the
result, so it must match a real cluster item for item; runtime/apiserver/patch/strategic.py calls in here.
"""

from __future__ import annotations

from typing import Any

from runtime.apiserver.patch.jsonpatch import PatchError
from runtime.apiserver.patch.strategic_go import bad_type, go_equal, go_repr, go_stable_sort, no_merge_key

DIRECTIVE = "$patch"  # `{"$patch": "delete"}` in a keyed list removes the item with that key


def _keyed(item: Any, merge_key: str) -> dict[str, Any]:
    """An item of a keyed list: a map that carries the merge key (Go's errors otherwise)."""
    if not isinstance(item, dict):
        raise bad_type("map[string]interface {}", item)
    if merge_key not in item:
        raise no_merge_key(item, merge_key)
    return item


def index_of(items: list[Any], val: Any, merge_key: str, is_map: bool) -> int:
    """Position of `val` in `items` (by merge key for keyed lists), -1 when absent."""

    def get(x: Any) -> Any:
        if is_map:
            return x.get(merge_key) if isinstance(x, dict) else None
        return x

    target = get(val)
    for i, v in enumerate(items):
        if go_equal(get(v), target):
            return i
    return -1


def _normalize_slice_order(to_sort: list[Any], order: list[Any], merge_key: str, is_map: bool) -> list[Any]:
    to_delete: list[Any] = []
    if is_map:
        for item in to_sort + order:
            _keyed(item, merge_key)
        keep = [x for x in to_sort if x.get(DIRECTIVE) != "delete"]
        to_delete = [x for x in to_sort if x.get(DIRECTIVE) == "delete"]
        to_sort = keep

    def less(x: Any, y: Any) -> bool:
        ii = index_of(order, x, merge_key, is_map)
        if ii >= 0:
            ij = index_of(order, y, merge_key, is_map)
            if ij >= 0:
                return ii < ij
        return True

    return go_stable_sort(to_sort, less) + to_delete


def _merge_sorted(
    left: list[Any], right: list[Any], server: list[Any], merge_key: str, is_map: bool
) -> list[Any]:
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = index_of(server, left[i], merge_key, is_map)
            ri = index_of(server, right[j], merge_key, is_map)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def normalize_element_order(
    patch: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    is_map: bool,
) -> list[Any]:
    """normalizeElementOrder: patch items in `patch_order`, server-only items in server order, merged."""
    patch = _normalize_slice_order(patch, patch_order, merge_key, is_map)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, is_map)
    return _merge_sorted(server_only, patch, server_order, merge_key, is_map)


def partition(items: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """(items found in `by`, the rest), matching by merge key for keyed lists."""
    inside: list[Any] = []
    outside: list[Any] = []
    for v in items:
        if merge_key:
            found = index_of(by, _keyed(v, merge_key), merge_key, True) >= 0
        else:
            found = any(go_equal(v, b) for b in by)
        (inside if found else outside).append(v)
    return inside, outside


def validate_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    """A patch list must follow its `$setElementOrder` list (else the 500 a real server answers)."""
    if not order or not patch_list:
        return
    items = (
        [p for p in patch_list if not (isinstance(p, dict) and p.get(DIRECTIVE) == "delete")]
        if merge_key
        else list(patch_list)
    )
    pi = oi = 0
    while pi < len(items) and oi < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if merge_key:
            if not isinstance(items[pi], dict) or not isinstance(order[oi], dict):
                raise bad_type("map[string]interface {}", items[pi])
            same = go_equal(items[pi].get(merge_key), order[oi].get(merge_key))
        else:
            same = go_equal(items[pi], order[oi])
        if same:
            pi += 1
        oi += 1
    if pi < len(items) and oi >= len(order):
        raise PatchError(
            f"The order in patch list:\n{go_repr(patch_list)}\n doesn't match $setElementOrder list:\n"
            f"{go_repr(order)}\n",
            500,
        )
