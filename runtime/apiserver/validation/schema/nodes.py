"""A structural schema compiled once into nodes the per-write walks read without dict look-ups:
what to check at a value (only the keywords the schema has), its children, and which subtrees hold
list-type sets/maps or defaults at all, so the walks skip the rest (a KubeEdge Device's schema has
neither: the walk for them costs nothing)."""

from __future__ import annotations

import functools
import re
from typing import Any

from runtime.apiserver.validation.fieldtree import SchemaKey

Obj = dict[str, Any]

_STRING_KEYS = ("maxLength", "minLength", "pattern", "format")
_NUMBER_KEYS = ("multipleOf", "maximum", "minimum")
_ARRAY_KEYS = ("minItems", "maxItems")


class Node:
    __slots__ = (
        "addl",
        "array_checks",
        "defaults",
        "enum",
        "fills",
        "has_defaults",
        "has_lists",
        "items",
        "list_keys",
        "list_type",
        "nullable",
        "number_checks",
        "object_checks",
        "pattern",
        "props",
        "required",
        "s",
        "string_checks",
        "types",
    )

    def __init__(self, s: Obj) -> None:
        self.s = s
        if s.get("x-kubernetes-int-or-string"):
            self.types: tuple[str, ...] = ("integer", "string")
        else:
            self.types = (s["type"],) if s.get("type") else ()
        self.nullable = bool(s.get("nullable"))
        self.enum = s.get("enum")
        self.string_checks = any(k in s for k in _STRING_KEYS)
        self.number_checks = any(k in s for k in _NUMBER_KEYS)
        self.array_checks = any(k in s for k in _ARRAY_KEYS)
        self.pattern = _compile(s["pattern"]) if isinstance(s.get("pattern"), str) else None
        props = s.get("properties")
        self.props = {k: Node(v) for k, v in props.items() if isinstance(v, dict)} if props else {}
        addl = s.get("additionalProperties")
        self.addl = Node(addl) if isinstance(addl, dict) else None
        items = s.get("items")
        self.items = Node(items) if isinstance(items, dict) else None
        self.required = tuple(s.get("required") or ())
        self.object_checks = bool(self.props or self.addl or self.required) or (
            "minProperties" in s or "maxProperties" in s
        )
        self.list_type = s.get("x-kubernetes-list-type")
        self.list_keys = list(s.get("x-kubernetes-list-map-keys") or [])
        self.defaults = {k: v.s["default"] for k, v in self.props.items() if "default" in v.s}
        children = [*self.props.values(), *(n for n in (self.addl, self.items) if n is not None)]
        self.has_lists: bool = self.list_type in ("set", "map") or any(c.has_lists for c in children)
        # defaults to fill in, or declared fields whose null the decoder drops
        self.has_defaults: bool = bool(self.defaults or self.props) or any(c.has_defaults for c in children)
        # a `default:` somewhere below: objects read from storage get them too
        self.fills: bool = bool(self.defaults) or any(c.fills for c in children)


@functools.lru_cache(maxsize=512)
def _compile(p: str) -> re.Pattern[str] | None:
    try:
        return re.compile(p)
    except re.error:
        return None


def node_for(schema: Obj) -> Node:
    """The compiled root of a served CRD's schema (cached while the schema dict lives)."""
    return _cached(SchemaKey(schema))


@functools.lru_cache(maxsize=256)
def _cached(key: SchemaKey) -> Node:
    return Node(key.schema)
