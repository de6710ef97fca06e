"""Typed twin values: the ONE mapping between the twin wire's lower-case types and DeviceModel types.

KubeEdge carries every value as a string. The twin wire names types in lower case (``int``,
``float``, …, as edgecore accepts them); DeviceModel properties name them in upper case (``INT``,
``FLOAT``, …). ``wire_type`` maps either spelling to the wire's; ``parse`` checks a value against its
type and the model's minimum/maximum and returns it in canonical form, or raises ``BadValue``.
edgecore rejects the model's own spelling ``FLOAT`` (recorded) — kedge accepts both.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

# DeviceModel spelling (v1beta1 enum) -> twin wire spelling
MODEL_TO_WIRE = {
    "INT": "int",
    "FLOAT": "float",
    "DOUBLE": "double",
    "STRING": "string",
    "BOOLEAN": "boolean",
    "BYTES": "bytes",
    "TIMESTAMP": "timestamp",
    "STREAM": "stream",
}
_ALIASES = {"integer": "int", "bool": "boolean"}
NUMERIC = frozenset({"int", "float", "double"})
_INT = re.compile(r"^[+-]?\d+$")
_TRUE = {"1", "t", "true"}
_FALSE = {"0", "f", "false"}  # Go's strconv.ParseBool, case-insensitive


class BadValue(ValueError):
    """The value does not fit its type or range; the message is the rejection reason."""


def wire_type(name: str | None) -> str | None:
    """``FLOAT``/``float``/``Float`` → ``float``; None for an unknown type name."""
    if not name:
        return None
    low = name.strip().lower()
    low = _ALIASES.get(low, low)
    return low if low in MODEL_TO_WIRE.values() else None


def as_text(value: Any) -> str | None:
    """A JSON value as KubeEdge's string form (numbers and booleans accepted too); None if not scalar."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    return None


def _number(text: str, typ: str) -> float:
    if typ == "int":
        if not _INT.match(text.strip()):
            raise BadValue(f"the value {text!r} is not int")
        return int(text)
    try:
        num = float(text)
    except ValueError:
        raise BadValue(f"the value {text!r} is not {typ}") from None
    if not math.isfinite(num):
        raise BadValue(f"the value {text!r} is not a finite {typ}")
    return num


def parse(text: str, typ: str, minimum: str | None = None, maximum: str | None = None) -> str:
    """Check ``text`` as ``typ`` (wire spelling); return the value as stored (unchanged text)."""
    if typ in NUMERIC:
        num = _number(text, typ)
        # operators, not num.__lt__: int.__lt__(float) is NotImplemented (truthy), so every int was
        # "out of range" of a model with bounds (KubeEdge's sample: INT, minimum "1", maximum "100")
        for bound, name, bad in (
            (minimum, "minimum", lambda lim: num < lim),
            (maximum, "maximum", lambda lim: num > lim),
        ):
            if bound in (None, ""):
                continue
            try:
                limit = float(bound)
            except ValueError:
                continue  # a model with an unparsable bound does not block every report
            if bad(limit):
                raise BadValue(f"the value {text} is out of range: {name} is {bound}")
    elif typ == "boolean":
        if text.strip().lower() not in _TRUE | _FALSE:
            raise BadValue(f"the value {text!r} is not boolean")
    elif typ == "timestamp":
        if not _INT.match(text.strip()):
            try:
                datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise BadValue(f"the value {text!r} is not a timestamp (ms or RFC 3339)") from None
    return text


def same(a: str | None, b: str | None, typ: str) -> bool:
    """Typed equality (``22`` == ``22.0`` for a float; edgecore compares strings and sends a delta)."""
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    try:
        if typ in NUMERIC:
            return _number(a, typ) == _number(b, typ)
        if typ == "boolean":
            return (a.strip().lower() in _TRUE) == (b.strip().lower() in _TRUE)
    except BadValue:
        return False
    return False
