"""Duplicate fields in a JSON body, which a real server's strict decoder reports
(`duplicate field "metadata.name"`) while keeping the last value, as orjson does.

orjson cannot tell us: it keeps the last value silently. Re-parsing every body with the stdlib's
object_pairs_hook costs ~6x orjson, so a cheap byte count decides first: each key of a compact JSON
text is followed by `":`, and orjson re-encodes the decoded object with one `":` per key kept. More in
the body than in the re-encoding means some key was given twice (or a string value holds `":` —
then the slow path finds nothing). Whitespace before a colon would hide keys from the count, so such
bodies take the slow path too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_SPACE_COLON = re.compile(rb'"\s+:')


def duplicate_fields(body: bytes, decoded: Any) -> list[str]:
    """Paths of the fields given more than once in `body` (document order); [] in the common case."""
    if body.count(b'":') <= orjson.dumps(decoded).count(b'":') and not _SPACE_COLON.search(body):
        return []
    try:
        tree = json.loads(body, object_pairs_hook=_Seen.of)
    except ValueError:
        return []
    found: list[str] = []
    _collect(tree, "", found)
    return found


class _Seen(dict[str, Any]):
    """A decoded object remembering which of its keys came more than once."""

    dups: list[str] = []

    @classmethod
    def of(cls, pairs: list[tuple[str, Any]]) -> _Seen:
        obj = cls(pairs)
        if len(obj) != len(pairs):
            seen: set[str] = set()
            obj.dups = [k for k, _ in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        return obj


def _collect(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, _Seen):
        found.extend(f"{path}.{k}" if path else k for k in value.dups)
        for k, v in value.items():
            _collect(v, f"{path}.{k}" if path else k, found)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _collect(item, f"{path}[{i}]", found)
