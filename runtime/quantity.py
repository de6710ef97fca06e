"""resource.Quantity parsing and canonical form (apimachinery/pkg/api/resource): the one parser.

The API server canonicalises and sums quantities (admission, QoS, scheduling); the edge turns limits and
requests into Docker's numbers and downward-API values. QoS classes compare summed requests with
limits, and the server re-serialises every quantity in its canonical form ("0.5" CPU comes back as
"500m", "1024Mi" as "1Gi"); both need exact decimal arithmetic, so quantities are Fractions here.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_RE = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")


_HASHABLE = (str, int, float)  # exact types: bool and subclasses take the uncached path


class QuantityError(ValueError):
    """Not a Kubernetes quantity ("quantities must match the regular expression ...")."""


def parse_quantity(s: str | int | float) -> Fraction:
    """The exact value (Fractions are immutable, so results are memoised: pods repeat a few quantities)."""
    if type(s) in _HASHABLE:
        return _parse_cached(s)
    return _parse(s)  # anything else fails (or not) exactly as before, uncached


def _parse(s: str | int | float) -> Fraction:
    if isinstance(s, (int, float)):
        return Fraction(str(s))
    m = _RE.match(s.strip())
    if not m:
        raise QuantityError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    num, suffix = Fraction(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        return num * _BINARY[suffix]
    if suffix in _DECIMAL:
        return num * Fraction(10) ** _DECIMAL[suffix]
    return num * Fraction(10) ** int(suffix[1:])


def canonical_quantity(s: str | int | float) -> str:
    """The string kube-apiserver returns for a stored quantity (binary stays binary, else decimal SI).

    Values are rounded up to milli precision first, as SetDefaults_ResourceList does. Memoised: the
    Fraction arithmetic costs ~0.1 ms and every pod create repeats the same few quantities.
    """
    if type(s) in _HASHABLE:
        return _canonical_cached(s)
    return _canonical(s)


def _canonical(s: str | int | float) -> str:
    raw = str(s).strip()
    value = parse_quantity(raw)
    milli = value * 1000
    if milli.denominator != 1:
        milli = Fraction(-((-milli.numerator) // milli.denominator))  # round up (ceil)
    value = milli / 1000
    m = _RE.match(raw)
    suffix = (m.group(2) or "") if m else ""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    av = abs(value)
    if suffix in _BINARY and av.denominator == 1 and av >= 1024:
        n = int(av)
        best = ""
        for name, mult in _BINARY.items():
            if n % mult == 0:
                best = name
        if best:
            return f"{sign}{n // _BINARY[best]}{best}"
        return f"{sign}{n}"
    if suffix in _BINARY and av.denominator == 1:
        return f"{sign}{int(av)}"
    # Decimal SI: the largest exponent (multiple of 3) that keeps an integer mantissa.
    exp_form = suffix.startswith(("e", "E"))
    for exp, name in ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k"), (0, ""), (-3, "m")):
        mant = av / Fraction(10) ** exp
        if mant.denominator == 1:
            if exp_form:
                return f"{sign}{mant.numerator}" + (f"e{exp}" if exp else "")
            return f"{sign}{mant.numerator}{name}"
    return f"{sign}{(av * 1000).numerator}m"


_parse_cached = lru_cache(maxsize=4096, typed=True)(_parse)
_canonical_cached = lru_cache(maxsize=4096, typed=True)(_canonical)
