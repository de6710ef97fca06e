"""Kubernetes' CEL quantity library (k8s.io/apiserver/pkg/cel/library/quantity.go) for
x-kubernetes-validations rules: `quantity("1Gi")`, `isQuantity(s)`, and on a quantity `sign()`,
`isInteger()`, `asInteger()`, `asApproximateFloat()`, `add(q|int)`, `sub(q|int)`, `isLessThan(q)`,
`isGreaterThan(q)`, `compareTo(q)`.

The CEL engine takes only CEL values from Python functions, so a quantity is a one-entry map holding
its exact value (a Fraction's text): two quantities of the same value are `==`, as Kubernetes'
Quantity.Equal makes `quantity("1Gi") == quantity("1024Mi")` true.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from runtime.quantity import QuantityError, parse_quantity

KEY = "k8s.io/quantity"
_INT64 = (-(2**63), 2**63 - 1)


def _q(value: Fraction) -> dict[str, str]:
    return {KEY: str(value)}


def _value(q: Any) -> Fraction:
    if isinstance(q, dict) and KEY in q:
        return Fraction(q[KEY])
    if isinstance(q, int) and not isinstance(q, bool):
        return Fraction(q)
    raise ValueError("no such overload")


def quantity(s: str) -> dict[str, str]:
    try:
        return _q(parse_quantity(s))
    except (QuantityError, TypeError) as exc:
        raise ValueError(f"quantities must match the regular expression: {s!r}") from exc


def is_quantity(s: str) -> bool:
    try:
        parse_quantity(s)
    except (QuantityError, TypeError):
        return False
    return True


def _sign(q: Any) -> int:
    v = _value(q)
    return (v > 0) - (v < 0)


def _as_integer(q: Any) -> int:
    v = _value(q)
    if v.denominator != 1 or not _INT64[0] <= v.numerator <= _INT64[1]:
        raise ValueError("cannot convert value to integer")
    return v.numerator


def _compare(a: Any, b: Any) -> int:
    x, y = _value(a), _value(b)
    return (x > y) - (x < y)


def functions() -> dict[str, Any]:
    return {
        "quantity": quantity,
        "isQuantity": is_quantity,
        "sign": _sign,
        "isInteger": lambda q: _value(q).denominator == 1 and _INT64[0] <= _value(q) <= _INT64[1],
        "asInteger": _as_integer,
        "asApproximateFloat": lambda q: float(_value(q)),
        "add": lambda q, other: _q(_value(q) + _value(other)),
        "sub": lambda q, other: _q(_value(q) - _value(other)),
        "isLessThan": lambda a, b: _compare(a, b) < 0,
        "isGreaterThan": lambda a, b: _compare(a, b) > 0,
        "compareTo": _compare,
    }
