"""Label and field selectors, parsed and matched the way kube-apiserver does.

Clients (kubectl -l, controllers, watches) send selectors as strings; a server that parses them more
loosely than Kubernetes would accept requests a real cluster rejects, so the grammar, the validation of
keys and values, and the error texts follow apimachinery's `labels.Parse` and `fields.ParseSelector`.
Field selectors are per resource: each kind supports a fixed set of fields (pkg/apis/core/v1/conversion.go)
and everything else is refused with Kubernetes' own message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class SelectorError(Exception):
    """A selector string that kube-apiserver would answer with 400 BadRequest."""


# ---------------------------------------------------------------- validation (apimachinery/util/validation)

_INT_RE = re.compile(r"^[+-]?[0-9]+$")  # strconv.ParseInt(s, 10, 64): no spaces, no underscores
_QNAME_CHAR = "[A-Za-z0-9]"
_QNAME_EXT = "[-A-Za-z0-9_.]"
_QNAME_FMT = f"({_QNAME_CHAR}{_QNAME_EXT}*)?{_QNAME_CHAR}"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")

_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_QNAME_FMT}')"
)


def qualified_name_errors(value: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name`, as label and annotation keys must be."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a qualified name " + _QNAME_MSG + " with an optional DNS subdomain prefix and '/' "
            "(e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _QNAME_RE.match(name):
        errs.append("name part " + _QNAME_MSG)
    return errs


def dns1123_subdomain_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{_DNS1123_SUBDOMAIN_FMT}')"
        )
    return errs


def label_value_errors(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
            f"'12345', regex used for validation is '{_LABEL_VALUE_FMT}')"
        )
    return errs


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
    reqs: list[Requirement] = []
    for k, v in sorted((sel.get("matchLabels") or {}).items()):
        reqs.append(new_requirement(k, "=", [str(v)]))
    for expr in sel.get("matchExpressions") or []:
        op = _EXPR_OPS.get(str(expr.get("operator", "")))
        if op is None:
            raise SelectorError(f'"{expr.get("operator", "")}" is not a valid label selector operator')
        reqs.append(new_requirement(str(expr.get("key", "")), op, [str(v) for v in expr.get("values") or []]))
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# ---------------------------------------------------------------- field selectors


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool = False


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of `field=value` / `field!=value` terms over a resource's selectable fields."""

    resource: str
    terms: tuple[FieldTerm, ...] = ()
    _fields: Callable[[dict[str, Any]], dict[str, str]] | None = field(
        default=None, compare=False, repr=False
    )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if not self.terms:
            return True
        fn = self._fields or _meta_fields
        have = fn(dict(obj))
        for t in self.terms:
            val = have.get(t.field, "")
            if (val == t.value) == t.negate:
                return False
        return True

    def requires_exact(self, name: str) -> str | None:
        """The value a term pins `name` to (lets the core serve `metadata.name=x` from one key)."""
        for t in self.terms:
            if t.field == name and not t.negate:
                return t.value
        return None

    def empty(self) -> bool:
        return not self.terms

    def __str__(self) -> str:
        return ",".join(
            f"{t.field}{'!=' if t.negate else '='}{escape_field_value(t.value)}" for t in self.terms
        )


def escape_field_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape(v: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(v):
        c = v[i]
        if c == "\\":
            if i + 1 >= len(v) or v[i + 1] not in "\\,=":
                raise SelectorError("invalid escape sequence")
            out.append(v[i + 1])
            i += 2
            continue
        if c in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        out.append(c)
        i += 1
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    terms, cur, i = [], [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c == ",":
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    terms.append("".join(cur))
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
        i += 1
    return None


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(p)
    return cur


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _meta_fields(obj: dict[str, Any], namespaced: bool = True) -> dict[str, str]:
    out = {"metadata.name": _s(_get(obj, "metadata", "name"))}
    if namespaced:
        out["metadata.namespace"] = _s(_get(obj, "metadata", "namespace"))
    return out


def _pod_fields(pod: dict[str, Any]) -> dict[str, str]:
    ips = _get(pod, "status", "podIPs") or []
    first_ip = (
        _s(ips[0].get("ip")) if ips and isinstance(ips[0], Mapping) else _s(_get(pod, "status", "podIP"))
    )
    return {
        **_meta_fields(pod),
        "spec.nodeName": _s(_get(pod, "spec", "nodeName")),
        "spec.restartPolicy": _s(_get(pod, "spec", "restartPolicy")),
        "spec.schedulerName": _s(_get(pod, "spec", "schedulerName")),
        "spec.serviceAccountName": _s(_get(pod, "spec", "serviceAccountName")),
        "spec.hostNetwork": _s(bool(_get(pod, "spec", "hostNetwork"))),
        "status.phase": _s(_get(pod, "status", "phase")),
        "status.podIP": first_ip,
        "status.nominatedNodeName": _s(_get(pod, "status", "nominatedNodeName")),
    }


def _event_fields(ev: dict[str, Any]) -> dict[str, str]:
    io = ev.get("involvedObject") or {}
    source = _s(_get(ev, "source", "component")) or _s(ev.get("reportingComponent"))
    return {
        **_meta_fields(ev),
        **{
            f"involvedObject.{k}": _s(io.get(k))
            for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": _s(ev.get("reason")),
        "reportingComponent": _s(ev.get("reportingComponent")),
        "source": source,
        "type": _s(ev.get("type")),
    }


@dataclass(frozen=True)
class _FieldSpec:
    labels: frozenset[str]
    extract: Callable[[dict[str, Any]], dict[str, str]]
    aliases: Mapping[str, str] = field(default_factory=dict)


_META = frozenset({"metadata.name", "metadata.namespace"})

FIELD_SPECS: dict[str, _FieldSpec] = {
    "pods": _FieldSpec(
        _META
        | {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        },
        _pod_fields,
        {"spec.host": "spec.nodeName"},
    ),
    "nodes": _FieldSpec(
        frozenset({"metadata.name", "spec.unschedulable"}),
        lambda o: {
            **_meta_fields(o, False),
            "spec.unschedulable": _s(bool(_get(o, "spec", "unschedulable"))),
        },
    ),
    "namespaces": _FieldSpec(
        frozenset({"metadata.name", "status.phase"}),
        lambda o: {**_meta_fields(o, False), "status.phase": _s(_get(o, "status", "phase"))},
    ),
    "events": _FieldSpec(
        _META
        | {
            f"involvedObject.{k}"
            for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        }
        | {"reason", "reportingComponent", "source", "type"},
        _event_fields,
    ),
    "secrets": _FieldSpec(_META | {"type"}, lambda o: {**_meta_fields(o), "type": _s(o.get("type"))}),
    "services": _FieldSpec(
        _META | {"spec.clusterIP", "spec.type"},
        lambda o: {
            **_meta_fields(o),
            "spec.clusterIP": _s(_get(o, "spec", "clusterIP")),
            "spec.type": _s(_get(o, "spec", "type")),
        },
    ),
    "replicationcontrollers": _FieldSpec(
        _META | {"status.replicas"},
        lambda o: {**_meta_fields(o), "status.replicas": _s(_get(o, "status", "replicas") or 0)},
    ),
    "replicasets": _FieldSpec(
        _META | {"status.replicas"},
        lambda o: {**_meta_fields(o), "status.replicas": _s(_get(o, "status", "replicas") or 0)},
    ),
}


def parse_field_selector(s: str | None, resource: str) -> FieldSelector:
    """fields.ParseSelector plus the resource's field-label conversion (unknown fields are refused)."""
    spec = FIELD_SPECS.get(resource)
    extract = spec.extract if spec else _meta_fields
    if not s:
        return FieldSelector(resource, (), extract)
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(s)):
        if part == "":
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        lhs, op, rhs = split
        value = _unescape(rhs)
        if spec is not None:
            lhs = spec.aliases.get(lhs, lhs)
            if lhs not in spec.labels:
                raise SelectorError(f"field label not supported: {lhs}")
        elif lhs not in _META:
            raise SelectorError(
                f'"{lhs}" is not a known field selector: only "metadata.name", "metadata.namespace"'
            )
        terms.append(FieldTerm(lhs, value, negate=(op == "!=")))
    return FieldSelector(resource, tuple(terms), extract)
