"""Field sets as structured-merge-diff sees them, and their managedFields (FieldsV1) encoding.

A path is a tuple of elements: ("f", name) for a field, ("k", '{"name":"c"}') for an item of an
associative list, ("v", '"x"') for a member of a set, ("i", "0") for a positional item. FieldsV1 nests
them as `f:name`, `k:{...}`, `v:...`, `i:0`, with "." marking a node that is owned itself and also has
owned children. List types come from the same struct tags the strategic merge patch uses (patchmeta.SCHEMAS):
lists with a merge key are maps keyed by it (a few with the extra keys their OpenAPI declares), merge
lists of scalars are sets, everything else is atomic (owned as one leaf).
"""

from __future__ import annotations

import json
from typing import Any

from runtime.apiserver.patch.crdtypes import SchemaStruct
from runtime.apiserver.patch.patchmeta import KIND_SCHEMA, SCHEMAS

Elem = tuple[str, str]
# A type: a built-in struct's name (patchmeta.SCHEMAS), a custom resource's schema node, or unknown.
Struct = str | SchemaStruct | None
Path = tuple[Elem, ...]

# listMapKeys where OpenAPI declares more than the patch merge key, with the server-side defaults SMD
# fills in for missing key fields.
MULTI_KEYS: dict[tuple[str, str], tuple[list[str], dict[str, Any]]] = {
    ("Container", "ports"): (["containerPort", "protocol"], {"protocol": "TCP"}),
    ("ServiceSpec", "ports"): (["port", "protocol"], {"protocol": "TCP"}),
    ("PodSpec", "topologySpreadConstraints"): (["topologyKey", "whenUnsatisfiable"], {}),
}
ATOMIC_OVERRIDES = {("NodeStatus", "addresses")}
# Fields whose value is owned as one leaf (+structType=atomic / +mapType=atomic in the Go types).
ATOMIC_FIELDS = {
    "involvedObject",  # core Event's ObjectReference
    "roleRef",  # RBAC bindings' RoleRef
    "configMapKeyRef",
    "secretKeyRef",
    "fieldRef",
    "resourceFieldRef",
    "selector",
    "nodeSelector",
}


class ListType:
    def __init__(
        self,
        kind: str,
        keys: list[str] | None = None,
        defaults: dict[str, Any] | None = None,
        elem: Struct = None,
    ) -> None:
        self.kind = kind  # "map" | "set" | "atomic"
        self.keys = keys or []
        self.defaults = defaults or {}
        self.elem = elem


def root_struct(kind: str) -> str:
    return KIND_SCHEMA.get(kind, "Object")


def field_struct(struct: Struct, name: str) -> Struct:
    """The struct of a field's value (or a list's elements), if known."""
    if isinstance(struct, SchemaStruct):
        return struct.child(name)
    entry = SCHEMAS.get(struct or "", {}).get(name)
    return entry[2] if entry else None


def is_atomic(struct: Struct, name: str) -> bool:
    """Whether a map/struct field is owned as one leaf."""
    if isinstance(struct, SchemaStruct):
        return struct.atomic(name)
    return name in ATOMIC_FIELDS


def list_type(struct: Struct, name: str) -> ListType:
    if isinstance(struct, SchemaStruct):
        kind, keys = struct.list_kind(name)
        return ListType(kind, keys, {}, struct.child(name) if kind == "map" else None)
    entry = SCHEMAS.get(struct or "", {}).get(name)
    if entry is None or "merge" not in entry[0] or (struct, name) in ATOMIC_OVERRIDES:
        return ListType("atomic")
    if not entry[1]:
        return ListType("set")
    keys, defaults = MULTI_KEYS.get((struct or "", name), ([entry[1]], {}))
    return ListType("map", keys, defaults, entry[2])


def item_key(lt: ListType, item: Any) -> str:
    if lt.kind == "set":
        return json.dumps(item, separators=(",", ":"))
    src = item if isinstance(item, dict) else {}
    key = {k: src.get(k, lt.defaults.get(k)) for k in lt.keys if k in src or k in lt.defaults}
    memo = tuple((k, type(v), v) for k, v in key.items())  # types too: 1, 1.0 and True differ in JSON
    if all(type(v) in _KEY_SCALARS for _, _, v in memo):
        text = _KEY_MEMO.get(memo)
        if text is None:
            if len(_KEY_MEMO) >= 8192:
                _KEY_MEMO.clear()
            text = _KEY_MEMO[memo] = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return text
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


_KEY_SCALARS = (str, int, float, bool, type(None))
_KEY_MEMO: dict[tuple[tuple[str, type, Any], ...], str] = {}  # list keys repeat: container names, ports


def item_elem(lt: ListType, item: Any, index: int) -> Elem:
    if lt.kind == "map":
        return ("k", item_key(lt, item))
    if lt.kind == "set":
        return ("v", item_key(lt, item))
    return ("i", str(index))


# ---------------------------------------------------------------- FieldsV1 encoding


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    """The FieldsV1 tree, keys sorted; "." marks a member that is owned itself and has children."""
    root: dict[str, Any] = {}
    for path in paths:
        node = root
        for kind, val in path:
            key = kind + ":" + val
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            node = child
        if path:
            node["."] = None  # owned; dropped again by _finish when the node turns out to be a leaf
    return _finish(root)


def _finish(node: dict[str, Any]) -> dict[str, Any]:
    # "." sorts before every "f:", "i:", "k:", "v:" key, so it goes first when kept.
    keys = sorted(k for k in node if k != ".")
    if not keys:
        return {}
    out: dict[str, Any] = {".": {}} if "." in node else {}
    for k in keys:
        out[k] = _finish(node[k])
    return out


def from_fields_v1(fields: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(node: Any, prefix: Path) -> None:
        if not isinstance(node, dict):
            return
        if not node or "." in node:
            if prefix:
                out.add(prefix)
        for k, child in node.items():
            if k == ".":
                continue
            kind, _, val = k.partition(":")
            walk(child, (*prefix, (kind, val)))

    walk(fields, ())
    return out


def path_string(path: Path) -> str:
    """fieldpath.Path.String(): `.spec.containers[name="c"].image`."""
    out = []
    for kind, val in path:
        if kind == "f":
            out.append("." + val)
        elif kind == "k":
            try:
                keys = json.loads(val)
            except ValueError:
                keys = {}
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]")
        elif kind == "v":
            out.append(f"[={val}]")
        else:
            out.append(f"[{val}]")
    return "".join(out)


# ---------------------------------------------------------------- sets from objects


def to_field_set(value: Any, struct: Struct) -> set[Path]:
    """TypedValue.ToFieldSet (what an applier owns): leaves, list items, empty or null maps."""
    out: set[Path] = set()
    _walk_set(value, struct, (), out)
    return out


def _walk_set(value: Any, struct: Struct, path: Path, out: set[Path]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            p = (*path, ("f", k))
            if is_atomic(struct, k):
                out.add(p)
            elif isinstance(v, list):
                _walk_list(v, struct, k, p, out)
            elif isinstance(v, dict):
                _walk_set(v, field_struct(struct, k), p, out)
                if not v:
                    out.add(p)
            else:
                out.add(p)


def _walk_list(items: list[Any], struct: Struct, name: str, path: Path, out: set[Path]) -> None:
    lt = list_type(struct, name)
    if lt.kind == "atomic":
        out.add(path)
        return
    for i, item in enumerate(items):
        p = (*path, item_elem(lt, item, i))
        out.add(p)
        if lt.kind == "map" and isinstance(item, dict):
            _walk_set(item, lt.elem, p, out)


def compare(old: Any, new: Any, struct: Struct) -> tuple[set[Path], set[Path], set[Path]]:
    """TypedValue.Compare: (added, modified, removed) paths from old to new."""
    added: set[Path] = set()
    modified: set[Path] = set()
    removed: set[Path] = set()
    _cmp(old, new, struct, (), added, modified, removed, top=True)
    return added, modified, removed


def _cmp(
    old: Any,
    new: Any,
    struct: Struct,
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
    top: bool = False,
) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in set(old) | set(new):
            p = (*path, ("f", k))
            o, n = old.get(k, _MISSING), new.get(k, _MISSING)
            if o is _MISSING:
                added.add(p)
                _all(n, field_struct(struct, k), struct, k, p, added)
            elif n is _MISSING:
                removed.add(p)
                _all(o, field_struct(struct, k), struct, k, p, removed)
            elif is_atomic(struct, k):
                if o != n:
                    modified.add(p)
            elif isinstance(o, list) and isinstance(n, list):
                _cmp_list(o, n, struct, k, p, added, modified, removed)
            elif isinstance(o, dict) and isinstance(n, dict):
                _cmp(o, n, field_struct(struct, k), p, added, modified, removed)
            elif o != n or type(o) is not type(n):
                modified.add(p)
                if isinstance(n, (dict, list)):
                    _all(n, field_struct(struct, k), struct, k, p, added)
        return
    if old != new and path:
        modified.add(path)


_MISSING = object()


def _all(value: Any, sub: Struct, parent: Struct, name: str, path: Path, into: set[Path]) -> None:
    """Every node under a newly added (or removed) value, as Compare reports them."""
    if is_atomic(parent, name):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            p = (*path, ("f", k))
            into.add(p)
            _all(v, field_struct(sub, k), sub, k, p, into)
    elif isinstance(value, list):
        lt = list_type(parent, name)
        if lt.kind == "atomic":
            return
        for i, item in enumerate(value):
            p = (*path, item_elem(lt, item, i))
            into.add(p)
            if lt.kind == "map":
                _all(item, lt.elem, None, "", p, into)


def _cmp_list(
    old: list[Any],
    new: list[Any],
    struct: Struct,
    name: str,
    path: Path,
    added: set[Path],
    modified: set[Path],
    removed: set[Path],
) -> None:
    lt = list_type(struct, name)
    if lt.kind == "atomic":
        if old != new:
            modified.add(path)
        return
    o_items = {item_elem(lt, it, i): it for i, it in enumerate(old)}
    n_items = {item_elem(lt, it, i): it for i, it in enumerate(new)}
    for e in set(o_items) | set(n_items):
        p = (*path, e)
        if e not in o_items:
            added.add(p)
            if lt.kind == "map":
                _all(n_items[e], lt.elem, lt.elem, "", p, added)
        elif e not in n_items:
            removed.add(p)
            if lt.kind == "map":
                _all(o_items[e], lt.elem, lt.elem, "", p, removed)
        elif lt.kind == "map":
            _cmp(o_items[e], n_items[e], lt.elem, p, added, modified, removed)
