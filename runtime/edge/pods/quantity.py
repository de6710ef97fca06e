"""Kubernetes resource quantities ("500m", "128Mi", "1G", "2e3") to numbers, for limits and env."""

from __future__ import annotations

from decimal import Decimal

_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def parse(q: str | int | float) -> Decimal:
    """Exact value of a quantity; ValueError names the bad input."""
    s = str(q).strip()
    for suf in sorted(_SUFFIX, key=len, reverse=True):
        if s.endswith(suf) and s[: -len(suf)]:
            return Decimal(s[: -len(suf)]) * Decimal(str(_SUFFIX[suf]))
    try:
        return Decimal(s)
    except Exception as exc:
        raise ValueError(f"not a Kubernetes quantity: {q!r}") from exc
