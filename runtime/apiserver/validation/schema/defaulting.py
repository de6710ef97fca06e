"""`default:` values and non-nullable nulls, as apiextensions' decoder handles them
(structuraldefaulting.PruneNonNullableNullsWithoutDefaults, then Default): a null where the schema
neither allows null nor has a default is dropped; a missing (or non-nullable null) field with a
default gets a copy of it, and the walk goes on inside what was filled in (so `window: {}` defaulted
gets its own fields' defaults)."""

from __future__ import annotations

import copy
from typing import Any

from runtime.apiserver.validation.schema.nodes import Node, node_for

Obj = dict[str, Any]


def default(v: Any, schema: Obj | Node) -> None:
    """Fill in defaults and drop non-nullable nulls below `v`, in place."""
    _walk(v, schema if isinstance(schema, Node) else node_for(schema))


def _walk(v: Any, n: Node) -> None:
    if type(v) is dict:
        props = n.props
        for k, d in n.defaults.items():
            if k not in v or (v[k] is None and not props[k].nullable):
                v[k] = copy.deepcopy(d)
        drop = None
        addl = n.addl
        for k, x in v.items():
            p = props.get(k, addl)
            if p is None:
                continue
            if x is None:
                if k in props and not p.nullable:
                    drop = [k] if drop is None else [*drop, k]
            elif p.has_defaults and type(x) in (dict, list):
                _walk(x, p)
        if drop is not None:
            for k in drop:
                del v[k]
    elif type(v) is list:
        items = n.items
        if items is not None and items.has_defaults:
            for x in v:
                if type(x) in (dict, list):
                    _walk(x, items)
