"""Compact field trees for unknown-field detection, and the walk that prunes with them.

Decoding into Go structs (built-in kinds) or pruning against the structural schema (custom resources)
drops every field the type does not declare, at any depth; with fieldValidation Strict/Warn the real
server reports each dropped path. A tree is compiled once per kind (lazily, cached) from the same type
definitions /openapi/v2 serves, so a write only pays for one walk over what it sent: leaves (strings,
maps of strings, quantities, anything schemaless) are not descended into.
"""

from __future__ import annotations

import functools
from typing import Any

from runtime.apiserver.openapi.defs import kind_definition

Obj = dict[str, Any]


class Struct:
    """An object node: its declared fields, and what a key it does not declare is (REJECT: unknown)."""

    __slots__ = ("extra", "fields")

    def __init__(self, fields: dict[str, Node], extra: Any) -> None:
        self.fields = fields
        self.extra = extra


class Items:
    """An array node."""

    __slots__ = ("of",)

    def __init__(self, of: Node) -> None:
        self.of = of


Node = Struct | Items | None  # None: anything goes, nothing below is checked
REJECT = object()  # Struct.extra: undeclared keys are unknown fields
_MISSING = object()


# Built-in kinds: from the swagger definitions openapi_defs builds from lightkube-models.


@functools.cache
def builtin_tree(group: str, version: str, kind: str) -> Node:
    found = kind_definition(group, version, kind)
    if found is None:
        return None
    name, defs = found
    return _from_swagger({"$ref": "#/definitions/" + name}, defs, {})


def _from_swagger(schema: Obj, defs: Obj, memo: dict[str, Node]) -> Node:
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[1]
        if name in memo:
            return memo[name]
        target = defs.get(name) or {}
        if not target.get("properties"):
            memo[name] = None
            return None
        node = Struct({}, REJECT)
        memo[name] = node  # before the fields: recursive types (JSONSchemaProps) refer to themselves
        node.fields = {k: _from_swagger(v, defs, memo) for k, v in target["properties"].items()}
        return node
    if schema.get("type") == "array":
        of = _from_swagger(schema.get("items") or {}, defs, memo)
        return Items(of) if of is not None else None
    return None  # scalars, and maps (lightkube does not keep their value types)


# Custom resources: the structural schema, pruned as apiextensions prunes (pruning.PruneWithOptions).


def crd_tree(schema: Obj) -> Node:
    """The root of a custom resource: TypeMeta and ObjectMeta are always known there."""
    return _cached_crd_tree(SchemaKey(schema))


class SchemaKey:
    """Holds a CRD schema for a cache; compared by identity (a CRD update brings a new schema dict)."""

    __slots__ = ("schema",)

    def __init__(self, schema: Obj) -> None:
        self.schema = schema

    def __hash__(self) -> int:
        return id(self.schema)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SchemaKey) and other.schema is self.schema


@functools.lru_cache(maxsize=256)
def _cached_crd_tree(key: SchemaKey) -> Node:
    return _from_structural(key.schema, embedded=True)


def _from_structural(s: Obj, embedded: bool = False) -> Node:
    if not isinstance(s, dict):
        return None
    props = s.get("properties")
    addl = s.get("additionalProperties")
    items = s.get("items")
    embedded = embedded or bool(s.get("x-kubernetes-embedded-resource"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if isinstance(items, dict):
        of = _from_structural(items)
        return Items(of) if of is not None else None
    if props is None and addl is None and not embedded:
        # an object declaring no field has none (everything below is pruned); otherwise a scalar
        return Struct({}, REJECT) if s.get("type") == "object" and not preserve else None
    fields = {k: _from_structural(v) for k, v in (props or {}).items()}
    if embedded:
        fields.update(apiVersion=None, kind=None, metadata=object_meta_tree())
    if isinstance(addl, dict):
        extra: Any = _from_structural(addl)
    elif addl is True or preserve:
        extra = None
    else:
        extra = REJECT
    if extra is None and all(v is None for v in fields.values()):
        return None
    return Struct(fields, extra)


@functools.lru_cache(maxsize=1)
def object_meta_tree() -> Node:
    tree = builtin_tree("", "v1", "Pod")
    assert isinstance(tree, Struct)
    return tree.fields["metadata"]


# The walk


def prune(value: Any, node: Node, path: str, unknown: list[str]) -> None:
    """Delete the undeclared fields below `node`, appending their paths (document order)."""
    if node.__class__ is Struct:
        if value.__class__ is not dict:
            return
        assert isinstance(node, Struct)
        fields, extra = node.fields, node.extra
        bad = None
        for k, v in value.items():
            child: Any = fields.get(k, _MISSING)
            if child is _MISSING:
                if extra is REJECT:
                    unknown.append(f"{path}.{k}" if path else k)
                    bad = [k] if bad is None else [*bad, k]
                    continue
                child = extra
            if child is not None:
                prune(v, child, f"{path}.{k}" if path else k, unknown)
        if bad is not None:
            for k in bad:
                del value[k]
    elif node.__class__ is Items and value.__class__ is list:
        assert isinstance(node, Items)
        of = node.of
        for i, item in enumerate(value):
            prune(item, of, f"{path}[{i}]", unknown)
