"""managedFields of a create, built straight from the new object as a FieldsV1 tree.

The general path (ssa.update_managed_fields) compares the object with its typed zero value into sets
of path tuples, filters them and re-nests them as FieldsV1. For a create nobody else owns anything, so
the same walk can write the nested tree at once — a third of the cost of a pod create before this.
Each function mirrors one in fieldsets.py (_cmp, _cmp_list, _all) and must stay in step with it;
tests/unit/apiserver/test_createfields.py checks both paths agree.
"""

from __future__ import annotations

from typing import Any

from runtime.apiserver.fieldsets import ATOMIC_FIELDS, field_struct, item_elem, list_type

Node = dict[str, Any]  # "kind:val" -> child Node; the key "." marks a node owned itself
_OWN = "."
_MISSING = object()
# ssa._STRIPPED and reset_status for a main-resource write: never owned by anyone.
_TOP_DROP = ("f:apiVersion", "f:kind", "f:status")
# metadata fields the server sets: no manager ever owns them (ssa._STRIPPED uses the same list)
UNOWNED_META = (
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
)
_META_DROP = tuple("f:" + k for k in UNOWNED_META)


def create_fields_v1(skeleton: Any, new: Any, struct: str | None) -> dict[str, Any]:
    """FieldsV1 of what `new` adds or changes over `skeleton` (its typed zero value), filtered as
    update_managed_fields filters a main-resource write with status reset; {} when nothing is owned."""
    root: Node = {}
    _cmp(skeleton, new, struct, root)
    for k in _TOP_DROP:
        root.pop(k, None)
    meta = root.get("f:metadata")
    if meta is not None:
        meta.pop(_OWN, None)
        for k in _META_DROP:
            meta.pop(k, None)
    return _finish(root) or {}


def _own(node: Node, key: str) -> Node:
    child = node.get(key)
    if child is None:
        child = node[key] = {}
    child[_OWN] = None
    return child


def _child(node: Node, key: str) -> Node:
    child = node.get(key)
    if child is None:
        child = node[key] = {}
    return child


def _cmp(old: Any, new: Any, struct: str | None, node: Node) -> None:
    """fieldsets._cmp, keeping only what lands in `added` or `modified`."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in set(old) | set(new):
            o, n = old.get(k, _MISSING), new.get(k, _MISSING)
            if o is _MISSING:
                _all(n, field_struct(struct, k), struct, k, _own(node, "f:" + k))
            elif n is _MISSING:
                continue
            elif k in ATOMIC_FIELDS:
                if o != n:
                    _own(node, "f:" + k)
            elif isinstance(o, list) and isinstance(n, list):
                _cmp_list(o, n, struct, k, node)
            elif isinstance(o, dict) and isinstance(n, dict):
                _cmp(o, n, field_struct(struct, k), _child(node, "f:" + k))
            elif o != n or type(o) is not type(n):
                child = _own(node, "f:" + k)
                if isinstance(n, (dict, list)):
                    _all(n, field_struct(struct, k), struct, k, child)
        return
    if old != new:
        raise ValueError("create_fields_v1 needs two maps at the top")


def _cmp_list(old: list[Any], new: list[Any], struct: str | None, name: str, node: Node) -> None:
    lt = list_type(struct, name)
    key = "f:" + name
    if lt.kind == "atomic":
        if old != new:
            _own(node, key)
        return
    o_items = {item_elem(lt, it, i): it for i, it in enumerate(old)}
    n_items = {item_elem(lt, it, i): it for i, it in enumerate(new)}
    here = _child(node, key)
    for e, item in n_items.items():
        if e not in o_items:
            child = _own(here, e[0] + ":" + e[1])
            if lt.kind == "map":
                _all(item, lt.elem, lt.elem, "", child)
        elif lt.kind == "map":
            _cmp(o_items[e], item, lt.elem, _child(here, e[0] + ":" + e[1]))


def _all(value: Any, sub: str | None, parent: str | None, name: str, node: Node) -> None:
    """fieldsets._all: every node under a newly added value."""
    if name in ATOMIC_FIELDS:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            child = _own(node, "f:" + k)
            if isinstance(v, (dict, list)) and k not in ATOMIC_FIELDS:  # a scalar has nothing below
                _all(v, field_struct(sub, k), sub, k, child)
    elif isinstance(value, list):
        lt = list_type(parent, name)
        if lt.kind == "atomic":
            return
        for i, item in enumerate(value):
            kind, val = item_elem(lt, item, i)
            child = _own(node, kind + ":" + val)
            if lt.kind == "map":
                _all(item, lt.elem, None, "", child)


def _finish(node: Node) -> dict[str, Any] | None:
    """Sorted FieldsV1; None for a node neither owned nor above an owned one."""
    if len(node) == 1 and _OWN in node:
        return {}  # an owned leaf
    out: dict[str, Any] = {}
    for k in sorted(k for k in node if k != _OWN):
        child = _finish(node[k])
        if child is not None:
            out[k] = child
    if _OWN in node:
        return {_OWN: {}, **out} if out else {}
    return out or None
