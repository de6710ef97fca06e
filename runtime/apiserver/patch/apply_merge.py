"""structured-merge-diff's typed merge and field removal, on plain JSON values.

Server-side apply merges the applied configuration into the live object the way the Go library
does (config wins for scalars and atomic values, maps and keyed lists merge item by item, list order
follows its walk), and removes the fields an applier gave up. Both walk the object with the struct
information of fieldsets.py; apply.py decides what to merge and
remove.
"""

from __future__ import annotations

import copy
from typing import Any

from runtime.apiserver.patch.fieldsets import (
    ListType,
    Path,
    Struct,
    field_struct,
    is_atomic,
    item_elem,
    list_type,
)


def merge(live: Any, config: Any, struct: Struct) -> Any:
    """TypedValue.Merge: config wins for scalars and atomic values; maps and keyed lists merge."""
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for k, v in config.items():
            if k in out and not is_atomic(struct, k):
                if isinstance(out[k], list) and isinstance(v, list):
                    out[k] = _merge_list(out[k], v, list_type(struct, k))
                    continue
                if isinstance(out[k], dict) and isinstance(v, dict):
                    out[k] = merge(out[k], v, field_struct(struct, k))
                    continue
            out[k] = copy.deepcopy(v)
        return out
    return copy.deepcopy(config)


def _merge_list(lhs: list[Any], rhs: list[Any], lt: ListType) -> list[Any]:
    """mergingWalker.visitListItems: a two-pointer walk keeping live order, shared items in config order."""
    if lt.kind == "atomic":
        return copy.deepcopy(rhs)
    lpe = [item_elem(lt, it, i) for i, it in enumerate(lhs)]
    rpe = [item_elem(lt, it, i) for i, it in enumerate(rhs)]
    lmap = dict(zip(lpe, lhs, strict=True))
    rmap = dict(zip(rpe, rhs, strict=True))
    shared = [pe for pe in rpe if pe in lmap]
    next_shared = shared.pop(0) if shared else None
    merged_r: set[Any] = set()
    out: list[Any] = []

    def item(pe: Any) -> Any:
        if pe in lmap and pe in rmap:
            return merge(lmap[pe], rmap[pe], lt.elem) if lt.kind == "map" else copy.deepcopy(rmap[pe])
        return copy.deepcopy(rmap.get(pe, lmap.get(pe)))

    li = ri = 0
    while li < len(lpe) or ri < len(rpe):
        if li < len(lpe) and ri < len(rpe):
            pe = lpe[li]
            if pe == rpe[ri]:
                merged_r.add(pe)
                out.append(item(pe))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in rmap and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lpe):
            pe = lpe[li]
            if pe not in rmap:
                out.append(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in merged_r:
                li += 1
                continue
        if ri < len(rpe):
            pe = rpe[ri]
            merged_r.add(pe)
            out.append(item(pe))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


def remove_paths(obj: Any, paths: set[Path], struct: Struct) -> Any:
    """A copy of obj without the given fields / list items; maps emptied by the removal disappear."""
    out = copy.deepcopy(obj)
    for path in sorted(paths, key=len, reverse=True):
        _remove(out, path, struct)
    return out


def _remove(node: Any, path: Path, struct: Struct) -> bool:
    if not path or not isinstance(node, dict):
        return False
    (kind, name), rest = path[0], path[1:]
    if kind != "f" or name not in node:
        return False
    if not rest:
        del node[name]
        return True
    child = node[name]
    if isinstance(child, dict):
        gone = _remove(child, rest, field_struct(struct, name))
        if gone and not child:
            del node[name]
        return gone
    if isinstance(child, list):
        lt = list_type(struct, name)
        for i, it in enumerate(child):
            if item_elem(lt, it, i) == rest[0]:
                if len(rest) == 1:
                    del child[i]
                else:
                    _remove(it, rest[1:], lt.elem)
                if not child:
                    del node[name]
                return True
    return False
