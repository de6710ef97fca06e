"""A custom resource's type for field ownership, read from its CRD's structural schema, as
structured-merge-diff builds it: `x-kubernetes-list-type: map` lists are keyed by their
`x-kubernetes-list-map-keys`, `set` lists by value, every other list is atomic; an object with
`x-kubernetes-map-type: atomic` is owned as one leaf; `metadata` at the root (and in embedded
resources) is the built-in ObjectMeta. fieldsets.py takes a SchemaStruct wherever it takes a
built-in struct name."""

from __future__ import annotations

import functools
from typing import Any

from runtime.apiserver.validation.fieldtree import SchemaKey

Obj = dict[str, Any]


class SchemaStruct:
    __slots__ = ("_kids", "root", "s")

    def __init__(self, s: Obj, root: bool = False) -> None:
        self.s = s
        self.root = root
        self._kids: dict[str, Any] = {}

    def _node(self, name: str) -> Obj | None:
        props = self.s.get("properties")
        node = props.get(name) if props else None
        if node is None:
            addl = self.s.get("additionalProperties")
            node = addl if isinstance(addl, dict) else None
        return node if isinstance(node, dict) else None

    def child(self, name: str) -> SchemaStruct | str | None:
        """The type of a field's value, or of a list field's items."""
        if name in self._kids:
            kid: SchemaStruct | str | None = self._kids[name]
            return kid
        if self.root and name == "metadata":
            kid = "ObjectMeta"
        else:
            node = self._node(name)
            if node is not None and isinstance(node.get("items"), dict):
                node = node["items"]
            kid = (
                None if node is None else SchemaStruct(node, bool(node.get("x-kubernetes-embedded-resource")))
            )
        self._kids[name] = kid
        return kid

    def list_kind(self, name: str) -> tuple[str, list[str]]:
        """("map", keys) | ("set", []) | ("atomic", [])."""
        node = self._node(name)
        kind = node.get("x-kubernetes-list-type") if node is not None else None
        if kind == "map" and node is not None:
            return "map", list(node.get("x-kubernetes-list-map-keys") or [])
        return ("set", []) if kind == "set" else ("atomic", [])

    def atomic(self, name: str) -> bool:
        node = self._node(name)
        return node is not None and node.get("x-kubernetes-map-type") == "atomic"


def root_of(schema: Obj) -> SchemaStruct:
    """The root type of a CRD's schema (one per schema dict, so its memos are shared by writes)."""
    return _root(SchemaKey(schema))


@functools.lru_cache(maxsize=256)
def _root(key: SchemaKey) -> SchemaStruct:
    return SchemaStruct(key.schema, root=True)
