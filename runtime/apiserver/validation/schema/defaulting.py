"""`default:` values and non-nullable nulls, as apiextensions' decoder handles them
(structuraldefaulting.PruneNonNullableNullsWithoutDefaults, then Default): a null where the schema
neither allows null nor has a default is dropped; a missing (or non-nullable null) field with a
default gets a copy of it, and the walk goes on inside what was filled in (so `window: {}` defaulted
gets its own fields' defaults)."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def default(v: Any, s: Obj) -> None:
    """Fill in defaults and drop non-nullable nulls below `v`, in place."""
    if isinstance(v, dict):
        props = s.get("properties")
        if props:
            for k, p in props.items():
                if "default" in p and (k not in v or (v[k] is None and not p.get("nullable"))):
                    v[k] = copy.deepcopy(p["default"])
            drop = [k for k, x in v.items() if x is None and k in props and not props[k].get("nullable")]
            for k in drop:
                del v[k]
        addl = s.get("additionalProperties")
        for k, x in v.items():
            p = props.get(k) if props else None
            if p is None and isinstance(addl, dict):
                p = addl
            if p is not None and isinstance(x, dict | list):
                default(x, p)
    elif isinstance(v, list):
        items = s.get("items")
        if isinstance(items, dict):
            for x in v:
                if isinstance(x, dict | list):
                    default(x, items)
