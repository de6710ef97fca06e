"""Field selectors (`fieldSelector=`): fields.ParseSelector plus each kind's field-label conversion.

Every kind supports a fixed set of fields (pkg/apis/core/v1/conversion.go and the registries'
ToSelectableFields); anything else is refused with Kubernetes' own message, so a client sees on kedge
the same 400 it would see on a real cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class SelectorError(Exception):
    """A selector string that kube-apiserver would answer with 400 BadRequest."""


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negate: bool = False
    getter: Callable[[Mapping[str, Any]], str] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of `field=value` / `field!=value` terms over a resource's selectable fields."""

    resource: str
    terms: tuple[FieldTerm, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Only the fields the terms name are read (lists of 10,000 pods stay cheap)."""
        for t in self.terms:
            val = t.getter(obj) if t.getter is not None else _path_getter(t.field)(obj)
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
    # The whole field set, as the registry's ToSelectableFields returns it (tests check the getters
    # used for matching against it).
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
    if not s:
        return FieldSelector(resource, ())
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
        getter = _SPECIAL_GETTERS.get((resource, lhs)) or _path_getter(lhs)
        terms.append(FieldTerm(lhs, value, negate=(op == "!="), getter=getter))
    return FieldSelector(resource, tuple(terms))


def _path_getter(label: str) -> Callable[[Mapping[str, Any]], str]:
    parts = tuple(label.split("."))
    return lambda obj: _s(_get(obj, *parts))


def _first_pod_ip(pod: Mapping[str, Any]) -> str:
    ips = _get(pod, "status", "podIPs") or []
    if ips and isinstance(ips[0], Mapping):
        return _s(ips[0].get("ip"))
    return _s(_get(pod, "status", "podIP"))


_SPECIAL_GETTERS: dict[tuple[str, str], Callable[[Mapping[str, Any]], str]] = {
    ("pods", "status.podIP"): _first_pod_ip,
    ("pods", "status.podIPs"): lambda o: "",  # selectable but never set (ToSelectableFields omits it)
    ("pods", "spec.hostNetwork"): lambda o: _s(bool(_get(o, "spec", "hostNetwork"))),
    ("nodes", "spec.unschedulable"): lambda o: _s(bool(_get(o, "spec", "unschedulable"))),
    ("events", "source"): lambda o: _s(_get(o, "source", "component")) or _s(o.get("reportingComponent")),
    ("replicationcontrollers", "status.replicas"): lambda o: _s(_get(o, "status", "replicas") or 0),
    ("replicasets", "status.replicas"): lambda o: _s(_get(o, "status", "replicas") or 0),
}
