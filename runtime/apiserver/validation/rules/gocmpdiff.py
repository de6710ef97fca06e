"""go-cmp's `cmp.Diff(old, new)` report for internal structs (kube 1.28 appends it to the "pod updates may
not change fields" and "PVC spec is immutable" errors).

The two JSON values are compared as go-cmp walks Go values (struct fields in the order of gostruct.TYPES,
slices element by element, maps by sorted key, pointers through; nil slices/pointers/maps, scalars and
Quantities are leaves), then reported by go-cmp's rules: a changed struct prints its type and one line
per field; runs of equal fields keep 2 lines of context each side of a change and fold the rest into
`... // N identical fields`; a changed leaf (or a linear chain such as a pointer to a scalar or a
one-element slice) prints as a `-` and a `+` line; other changed values recurse. Identical values print
with their zero fields elided and at most 4 fields/elements per level; removed/inserted values print
their type and go multi-line past 80 columns. Keys of a run of single-line records are aligned.
Indentation is go-cmp's non-breaking-space form (go-cmp picks it or plain spaces per process; the recorded
1.28.7 answers use it). gocmptext.py lays the report out as text.

Limits: slices of differing lengths are paired by index (go-cmp runs an edit script); go-cmp's
specialised diff of long primitive slices/strings and pointer-cycle references are not reproduced;
struct types missing from the tables print their JSON keys in JSON order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from runtime.apiserver.validation.rules.gocmptext import (
    Node,
    Rec,
    Wrap,
    append_ellipsis,
    compact,
    render,
)
from runtime.apiserver.validation.rules.gostruct import TYPES, json_name, quantity_fields
from runtime.quantity import QuantityError, parse_quantity

_MISSING: Any = object()  # a slice element or map entry present on one side only
_CONTEXT = 2  # equal records shown each side of a change

_EMBEDDED = {"EphemeralContainerCommon", "VolumeSource", "LocalObjectReference"}
_STRINGERS = {"core.ResourceName"}  # named types with a String method: go-cmp prints s"..."
_INTS = {"int", "int32", "int64", "resource.Scale"}
_GENERIC = "?"  # a struct type not in TYPES: fields from its JSON keys


# ---- the value tree (go-cmp's valueNode) ----


@dataclass
class _Node:
    gotype: str
    x: Any
    y: Any
    records: list[tuple[str, _Node]] = field(default_factory=list)
    pointee: _Node | None = None
    same: int = 0
    diff: int = 0
    children: int = 0  # transitive descendants
    depth: int = 0

    def add(self, child: _Node) -> None:
        self.same += child.same
        self.diff += child.diff
        self.children += child.children + 1
        self.depth = max(self.depth, child.depth + 1)


def _kind(gotype: str) -> str:
    if gotype.startswith("*"):
        return "ptr"
    if gotype.startswith("[]"):
        return "slice"
    if gotype.startswith("map[") or gotype == "core.ResourceList":
        return "map"
    if gotype == "resource.Quantity":
        return "leaf"
    if gotype in TYPES or gotype == _GENERIC:
        return "struct"
    return "leaf"


def _elem(gotype: str) -> str:
    if gotype == "core.ResourceList":
        return "resource.Quantity"
    if gotype.startswith("map["):
        return gotype[gotype.index("]") + 1 :]
    return gotype[2:] if gotype.startswith("[]") else gotype[1:]


def _infer(value: Any) -> str:
    if isinstance(value, dict):
        return _GENERIC
    if isinstance(value, list):
        return "[]" + (_infer(value[0]) if value else "string")
    if isinstance(value, bool):
        return "bool"
    return "int64" if isinstance(value, int) else "string"


def _fields(gotype: str, x: Any, y: Any) -> list[tuple[str, str, Any, Any]]:
    """(Go name, Go type, old field value, new field value) of a struct."""
    xd = x if isinstance(x, dict) else {}
    yd = y if isinstance(y, dict) else {}
    if gotype == _GENERIC:
        keys = list(dict.fromkeys([*xd, *yd]))
        return [(k[0].upper() + k[1:], _infer(xd.get(k, yd.get(k))), xd.get(k), yd.get(k)) for k in keys]
    out: list[tuple[str, str, Any, Any]] = []
    for go, sub in TYPES[gotype]:
        if go in _EMBEDDED:
            out.append((go, sub, xd, yd))
        else:
            out.append((go, sub, xd.get(json_name(go)), yd.get(json_name(go))))
    return out


def _leaf_equal(gotype: str, x: Any, y: Any) -> bool:
    if gotype == "resource.Quantity":
        try:
            return bool(parse_quantity(x) == parse_quantity(y))
        except (QuantityError, TypeError):
            return bool(x == y)
    return (_is_zero(gotype, x) and _is_zero(gotype, y)) or x == y


def compare(x: Any, y: Any, gotype: str) -> _Node:
    node = _Node(gotype, x, y)
    kind = _kind(gotype)
    if x is _MISSING or y is _MISSING or kind == "leaf" or (kind != "struct" and (x is None or y is None)):
        equal = (
            x is not _MISSING
            and y is not _MISSING
            and (_leaf_equal(gotype, x, y) if kind == "leaf" else x is y)
        )
        node.same, node.diff = (1, 0) if equal else (0, 1)
        return node
    if kind == "ptr":
        node.pointee = compare(x, y, _elem(gotype))
        node.add(node.pointee)
        return node
    if kind == "slice":
        n = max(len(x), len(y))
        pairs = [("", x[i] if i < len(x) else _MISSING, y[i] if i < len(y) else _MISSING) for i in range(n)]
    elif kind == "map":
        keys = sorted({*x, *y})
        pairs = [(k, x.get(k, _MISSING), y.get(k, _MISSING)) for k in keys]
    else:
        for go, sub, fx, fy in _fields(gotype, x, y):
            child = compare(fx, fy, sub)
            node.records.append((go, child))
            node.add(child)
        return node
    for key, ex, ey in pairs:
        child = compare(ex, ey, _elem(gotype))
        node.records.append((key, child))
        node.add(child)
    return node


def _is_zero(gotype: str, v: Any) -> bool:
    if v is _MISSING:
        return False
    kind = _kind(gotype)
    if kind in ("ptr", "slice", "map"):
        return v is None
    if kind == "struct":
        return all(_is_zero(sub, fv) for _, sub, fv, _ in _fields(gotype, v, None))
    if gotype == "resource.Quantity":
        return v is None
    return not v


# ---- the report (go-cmp's report_compare.go / report_reflect.go) ----


@dataclass(frozen=True)
class _Opts:
    mode: str = "?"  # "?" differencing, "=" identical, "-" removed, "+" inserted
    verbosity: int = 0
    types: str = "auto"  # "auto", "elide" or "emit"

    def with_(self, **kw: Any) -> _Opts:
        return _Opts(**{**self.__dict__, **kw})

    def max_len(self) -> int:
        v = min(max(self.verbosity, 0), 16)
        return ((1 << v) >> 1) << 2 if self.mode == "=" else (1 << v) << 1


def _go_string(v: Any) -> str:
    return orjson.dumps("" if v is None else str(v)).decode()


def _with_type(gotype: str, out: Node, opts: _Opts) -> Node:
    if opts.types == "elide" or out == "nil":
        return out
    if opts.types == "auto" and (_kind(gotype) not in ("struct", "slice", "map") or opts.mode == "="):
        return out
    if gotype == _GENERIC or gotype.startswith("[]?"):
        return out
    return Wrap(gotype, out)


def format_value(v: Any, gotype: str, opts: _Opts) -> Node | None:
    """FormatValue: a whole value, zero struct fields elided, each level limited by the verbosity."""
    if v is _MISSING:
        return None
    kind = _kind(gotype)
    if gotype in _STRINGERS:
        return "s" + _go_string(v)
    if gotype == "resource.Quantity":
        return _format_struct(quantity_fields(v), gotype, opts)
    if kind == "ptr":
        if v is None:
            return "nil"
        elem = format_value(v, _elem(gotype), opts)
        return Wrap("&", elem if elem is not None else "nil")
    if kind in ("slice", "map"):
        if v is None:
            return "nil"
        limit, sub = opts.max_len(), opts.with_(verbosity=opts.verbosity - 1, types="elide")
        recs: list[Rec] = []
        items = sorted(v.items()) if kind == "map" else [("", e) for e in v]
        key_type = "core.ResourceName" if gotype == "core.ResourceList" else "string"
        for key, e in items:
            if len(recs) == limit:
                append_ellipsis(recs)
                break
            k = "" if kind == "slice" else str(format_value(key, key_type, sub.with_(mode="=")))
            recs.append(Rec(format_value(e, _elem(gotype), sub) or "nil", key=k))
        return _with_type(gotype, Wrap("{", recs, "}"), opts)
    if kind == "struct":
        return _format_struct(v, gotype, opts)
    if gotype in _INTS:
        return str(int(v or 0))
    if gotype == "bool":
        return "true" if v else "false"
    return _go_string(v)


def _format_struct(v: Any, gotype: str, opts: _Opts) -> Node:
    limit, sub = opts.max_len(), opts.with_(verbosity=opts.verbosity - 1, types="auto")
    recs: list[Rec] = []
    for go, ftype, fv, _ in _fields(gotype, v, None):
        if _is_zero(ftype, fv):
            continue
        if len(recs) == limit:
            append_ellipsis(recs)
            break
        recs.append(Rec(format_value(fv, ftype, sub) or "nil", key=go))
    return _with_type(gotype, Wrap("{", recs, "}"), opts)


def format_diff(node: _Node, opts: _Opts) -> Node | None:
    """FormatDiff: a compared value in one of the four modes."""
    opts = opts.with_(verbosity=1) if opts.mode == "=" else opts.with_(verbosity=max(opts.verbosity, 3))
    if node.depth == 0:
        if opts.mode in "?=" and node.diff == 0:
            outs = [format_value(node.x, node.gotype, opts), format_value(node.y, node.gotype, opts)]
            texts = [compact(o, "")[0] if o is not None else "" for o in outs]
            return outs[0] if len(texts[0]) < len(texts[1]) else outs[1]
        if opts.mode == "?":
            recs = [Rec(o, diff=m) for m, o in _pair(node, opts) if o is not None]
            return _with_type(node.gotype, recs, opts.with_(types="emit"))
        return format_value(node.x if opts.mode == "-" else node.y, node.gotype, opts)
    if node.pointee is not None:
        inner = format_diff(node.pointee, opts)
        return Wrap("&", inner if inner is not None else "nil")
    kind = _kind(node.gotype)
    return _with_type(node.gotype, Wrap("{", _diff_list(node, kind, opts), "}"), opts)


def _pair(node: _Node, opts: _Opts) -> list[tuple[str, Node | None]]:
    """The removed and the inserted text of a changed value, more verbose until they differ."""
    outx = format_diff(node, opts.with_(mode="-"))
    outy = format_diff(node, opts.with_(mode="+"))
    for i in range(7):
        if outx is None or outy is None or compact(outx, "")[0] != compact(outy, "")[0]:
            break
        more = opts.with_(verbosity=max(opts.verbosity, 0) + 2 * i, types="elide")
        outx, outy = format_diff(node, more.with_(mode="-")), format_diff(node, more.with_(mode="+"))
    return [("-", outx), ("+", outy)]


def _record_key(kind: str, key: str, gotype: str) -> str:
    if kind != "map":
        return key
    key_type = "core.ResourceName" if gotype == "core.ResourceList" else "string"
    return str(format_value(key, key_type, _Opts(mode="=")))


def _diff_list(node: _Node, kind: str, opts: _Opts) -> list[Rec]:
    """formatDiffList: a struct's fields, a slice's elements or a map's entries."""
    limit = opts.max_len()
    opts = opts.with_(verbosity=opts.verbosity - 1, types="auto" if kind == "struct" else "elide")
    if opts.mode == "?":
        return _changed_list(node, kind, opts)
    recs: list[Rec] = []
    for key, child in node.records:
        if len(recs) == limit:
            append_ellipsis(recs)
            break
        side = {"=": (child.x, child.y), "-": (child.x,), "+": (child.y,)}[opts.mode]
        if kind == "struct" and any(_is_zero(child.gotype, s) for s in side):
            continue  # zero fields are elided
        out = format_diff(child, opts)
        if out is not None:
            recs.append(Rec(out, key=_record_key(kind, key, node.gotype)))
    return recs


def _changed_list(node: _Node, kind: str, opts: _Opts) -> list[Rec]:
    """Runs of equal records keep _CONTEXT records each side of a change (none before the first change or
    after the last) and fold the rest into one `... // N identical fields` line."""
    name = {"struct": "field", "slice": "element", "map": "entry"}[kind]
    groups: list[list[tuple[str, _Node]]] = []
    for rec in node.records:
        if groups and (groups[-1][0][1].diff == 0) == (rec[1].diff == 0):
            groups[-1].append(rec)
        else:
            groups.append([rec])
    recs: list[Rec] = []

    def same(part: list[tuple[str, _Node]]) -> None:
        for key, child in part:
            out = format_diff(child, opts.with_(mode="="))
            recs.append(Rec(out or "nil", key=_record_key(kind, key, node.gotype)))

    for i, group in enumerate(groups):
        if group[0][1].diff == 0:
            lo = min(_CONTEXT, len(group)) if i != 0 else 0
            hi = min(_CONTEXT, len(group) - lo) if i != len(groups) - 1 else 0
            if len(group) - lo - hi == 1:
                hi += 1  # folding a single record saves nothing
            same(group[:lo])
            if len(group) > lo + hi:
                n = len(group) - lo - hi
                noun = name if n == 1 else ("entries" if name == "entry" else name + "s")
                append_ellipsis(recs, f"{n} identical {noun}")
            same(group[len(group) - hi :])
            continue
        for key, child in group:
            k = _record_key(kind, key, node.gotype)
            if child.children == child.depth:  # a leaf or a linear chain: old and new in full
                recs += [Rec(out, key=k, diff=m) for m, out in _pair(child, opts) if out is not None]
            else:
                recs.append(Rec(format_diff(child, opts) or "nil", key=k))
    return recs


def cmp_diff(old: Any, new: Any, gotype: str) -> str:
    """go-cmp's cmp.Diff(old, new) of two values of the internal struct `gotype`; "" when equal."""
    node = compare(old, new, gotype)
    if node.diff == 0:
        return ""
    out = format_diff(node, _Opts())
    return render(out if out is not None else "")
