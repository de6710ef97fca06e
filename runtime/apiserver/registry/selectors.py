"""Label and field selectors, parsed and matched the way kube-apiserver does.

Clients (kubectl -l, controllers, watches) send selectors as strings; a server that parses them more
loosely than Kubernetes would accept requests a real cluster rejects, so the grammar, the validation of
keys and values, and the error texts follow apimachinery's `labels.Parse` and `fields.ParseSelector`.
Field selectors are per resource: each kind supports a fixed set of fields (pkg/apis/core/v1/conversion.go)
and everything else is refused with Kubernetes' own message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.apiserver.registry.fieldselectors import (
    FIELD_SPECS,
    FieldSelector,
    FieldTerm,
    SelectorError,
    escape_field_value,
    parse_field_selector,
)
from runtime.apiserver.validation.names import INT_RE as _INT_RE
from runtime.apiserver.validation.names import label_value_errors, qualified_name_errors

__all__ = [
    "FIELD_SPECS",
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "escape_field_value",
    "label_selector_from_dict",
    "parse_field_selector",
    "parse_label_selector",
]


def _invalid(path: str, value: str, detail: str) -> str:
    """field.Invalid(...).Error(): `<path>: Invalid value: "<value>": <detail>`."""
    return f'{path}: Invalid value: "{value}": {detail}'


# ---------------------------------------------------------------- label selectors

OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    """One term: key, operator (Kubernetes' selection.Operator spelling) and values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("gt", "lt"):
            if self.key not in labels:
                return False
            if not (_INT_RE.match(labels[self.key]) and _INT_RE.match(self.values[0])):
                return False
            have, want = int(labels[self.key]), int(self.values[0])
            return have > want if op == "gt" else have < want
        return False

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return "!" + self.key
        vals = ",".join(sorted(self.values))
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({vals})"
        sym = {"gt": ">", "lt": "<"}.get(self.operator, self.operator)
        return f"{self.key}{sym}{vals}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; empty matches everything, `nothing=True` matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def new_requirement(key: str, op: str, values: list[str], path: str = "") -> Requirement:
    """NewRequirement: validate key, operator arity and values; errors aggregate like field.ErrorList."""
    errs: list[str] = []
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(_invalid(_child(path, "key"), key, "; ".join(key_errs)))
    vpath = _child(path, "values")
    bad = f"{vpath}: Invalid value: {_golist(values)}: "
    if op in ("in", "notin"):
        if not values:
            errs.append(bad + "for 'in', 'notin' operators, values set can't be empty")
    elif op in ("=", "==", "!="):
        if len(values) != 1:
            errs.append(bad + "exact-match compatibility requires one single value")
    elif op in ("exists", "!"):
        if values:
            errs.append(bad + "values set must be empty for exists and does not exist")
    elif op in ("gt", "lt"):
        if len(values) != 1:
            errs.append(bad + "for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(values):
            if not _INT_RE.match(v):
                msg = "for 'Gt', 'Lt' operators, the value must be an integer"
                errs.append(_invalid(f"{vpath}[{i}]", v, msg))
    else:
        errs.append(f'{_child(path, "operator")}: Unsupported value: "{op}"')
    for i, v in enumerate(values):
        v_errs = label_value_errors(v)
        if v_errs:
            errs.append(_invalid(f"{vpath}[{i}][{key}]", v, "; ".join(v_errs)))
    if errs:
        raise SelectorError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, op, tuple(values))


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _golist(values: list[str]) -> str:
    """Go's %#v of a []string, as field.Invalid prints a list value."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


_SPECIAL = set("=!(),><")
_WS = set(" \t\r\n")
_KEYWORDS = {"in": "in", "notin": "notin"}
_SYMBOLS = {")": ")", ",": ",", "!": "!", "==": "==", "=": "=", ">": ">", "<": "<", "!=": "!=", "(": "("}


def _lex(s: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is 'id', 'end', 'error' or the symbol/keyword itself."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WS:
            i += 1
        if i >= n:
            out.append(("end", ""))
            return out
        if s[i] in _SPECIAL:
            buf, last = "", ""
            while i < n and s[i] in _SPECIAL:
                if buf + s[i] in _SYMBOLS:
                    buf += s[i]
                    last = buf
                    i += 1
                elif last:
                    break
                else:
                    buf += s[i]
                    i += 1
            if not last:
                out.append(("error", f"error expected: keyword found '{buf}'"))
            else:
                out.append((last, last))
            continue
        start = i
        while i < n and s[i] not in _SPECIAL and s[i] not in _WS:
            i += 1
        word = s[start:i]
        out.append((_KEYWORDS.get(word, "id"), word))


class _Parser:
    def __init__(self, s: str) -> None:
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, values: bool) -> tuple[str, str]:
        kind, lit = self.items[self.pos]
        if values and kind in ("in", "notin"):
            kind = "id"
        return kind, lit

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._tok(values)

    def take(self, values: bool = True) -> tuple[str, str]:
        tok = self._tok(values)
        self.pos += 1
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind in ("id", "!"):
                try:
                    reqs.append(self.requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                kind, lit = self.take()
                if kind == "end":
                    return reqs
                if kind == ",":
                    k2, l2 = self.peek()
                    if k2 not in ("id", "!"):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                    continue
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            if kind == "end":
                return reqs
            raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        kind, lit = self.take()
        if kind == "!":
            op = "!"
            kind, lit = self.take()
        if kind != "id":
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = qualified_name_errors(lit)
        if key_errs:
            raise SelectorError(_invalid("", lit, "; ".join(key_errs)))
        key = lit
        if op == "!" or self.peek()[0] in ("end", ","):
            # `!key` is complete on its own; whatever follows is the caller's to reject.
            return new_requirement(key, op or "exists", [])
        kind, lit = self.take(values=False)
        ops = {"in": "in", "notin": "notin", "=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt"}
        if kind not in ops:
            raise SelectorError(f"found '{lit}', expected: in, notin, =, ==, !=, gt, lt")
        op = ops[kind]
        if op in ("in", "notin"):
            values = self.set_values()
        else:
            values = self.exact_value()
        return new_requirement(key, op, sorted(set(values)))

    def set_values(self) -> list[str]:
        kind, lit = self.take()
        if kind != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        kind, lit = self.peek()
        if kind == ")":
            self.take()
            return [""]
        if kind not in ("id", ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        vals: set[str] = set()
        while True:
            k, lit2 = self.take()
            if k == "id":
                vals.add(lit2)
                k2, l2 = self.peek()
                if k2 == ",":
                    continue
                if k2 == ")":
                    break
                raise SelectorError(f"found '{l2}', expected: ',' or ')'")
            if k == ",":
                if not vals:
                    vals.add("")
                k2, _ = self.peek()
                if k2 == ")":
                    vals.add("")
                    break
                if k2 == ",":
                    vals.add("")
                continue
            raise SelectorError(f"found '{lit2}', expected: ',', or identifier")
        k, _ = self.take()
        if k != ")":
            raise SelectorError(f"found '{lit}', expected: ')'")
        return sorted(vals)

    def exact_value(self) -> list[str]:
        kind, _ = self.peek()
        if kind in ("end", ","):
            return [""]
        kind, lit = self.take()
        if kind == "id":
            return [lit]
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str | None) -> LabelSelector:
    """labels.Parse: the `labelSelector` query parameter (`kubectl -l`)."""
    if not s:
        return LabelSelector()
    reqs = _Parser(s).parse()
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


_EXPR_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: nil matches nothing, {} matches everything."""
    if sel is None:
        return LabelSelector(nothing=True)
    labels, exprs = sel.get("matchLabels") or {}, sel.get("matchExpressions") or []
    if (
        not isinstance(labels, Mapping)
        or not isinstance(exprs, list)
        or not all(isinstance(e, Mapping) and isinstance(e.get("values") or [], list) for e in exprs)
    ):  # the decoder refuses these shapes first; a stored or internal object must not crash here
        raise SelectorError("matchLabels must be a map and matchExpressions a list of requirements")
    reqs: list[Requirement] = []
    for k, v in sorted(labels.items(), key=lambda kv: str(kv[0])):
        reqs.append(new_requirement(str(k), "=", [str(v)]))
    for expr in exprs:
        op = _EXPR_OPS.get(str(expr.get("operator", "")))
        if op is None:
            raise SelectorError(f'"{expr.get("operator", "")}" is not a valid label selector operator')
        reqs.append(new_requirement(str(expr.get("key", "")), op, [str(v) for v in expr.get("values") or []]))
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
