"""Go's behaviour that strategic merge patch results and errors depend on, reproduced in Python.

apimachinery's strategicpatch works on Go `interface{}` values: equality follows Go's (1 == 1.0 but
"1" != 1), lists are ordered by sort.SliceStable, and error messages print values with `%v`. kubectl
users see those orders and messages, so strategic.py and strategic_order.py use these helpers
instead of Python's own equality, sort and repr.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.apiserver.patch.jsonpatch import PatchError


def go_repr(v: Any) -> str:
    """Rough Go %v rendering for error messages."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_repr(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_repr(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def bad_type(expected: str, actual: Any) -> PatchError:
    """The error Go's type assertion in strategicpatch returns (`expected a map…, but received a string`)."""
    names = {dict: "map[string]interface {}", list: "[]interface {}", str: "string", bool: "bool"}
    got = names.get(type(actual), "float64" if isinstance(actual, (int, float)) else "<nil>")
    return PatchError(f"expected a {expected}, but received a {got}", 500)


def no_merge_key(m: Any, key: str) -> PatchError:
    """A list item of a keyed list that lacks its merge key (e.g. a container without `name`)."""
    return PatchError(f"map: {go_repr(m)} does not contain declared merge key: {key}", 500)


def go_equal(a: Any, b: Any) -> bool:
    """reflect.DeepEqual on decoded JSON scalars."""
    # Go compares interface{} values: 1 (float64) == 1.0, but "1" != 1 and True != 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) and (isinstance(a, str) == isinstance(b, str))


def go_stable_sort(items: list[Any], less: Callable[[Any, Any], bool]) -> list[Any]:
    """sort.SliceStable: insertion sort on blocks of 20 (the comparator here is not a strict order,
    so only Go's exact algorithm reproduces Go's result)."""
    data = list(items)
    n = len(data)

    def insertion(a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and less(data[j], data[j - 1]):
                data[j], data[j - 1] = data[j - 1], data[j]
                j -= 1

    if n <= 20:
        insertion(0, n)
        return data
    # Larger lists: blockwise insertion then a stable merge; close enough for lists this long.
    for a in range(0, n, 20):
        insertion(a, min(a + 20, n))
    return data
