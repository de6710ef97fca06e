"""Server-side printing: meta.k8s.io/v1 Table responses (`Accept: ...;as=Table;g=meta.k8s.io;v=v1`).

kubectl >= 1.11 does not format built-in kinds itself: it asks the server for a Table and prints the
cells, hiding columns with priority > 0 unless `-o wide`. The columns and cell values here follow
kube-apiserver's printers (pkg/printers/internalversion) — the server always generates the wide form —
CRDs use their additionalPrinterColumns (default: Age), everything else gets NAME / CREATED AT.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from runtime.apiserver.printers.core import (
    CREATED_DOC,
    NAME,
    col,
    human_duration,
    name_of,
    parse_time,
    since,
)
from runtime.apiserver.printers.kinds import PRINTERS

__all__ = ["human_duration", "jsonpath_value", "since", "to_table"]

Obj = dict[str, Any]

# ---------------------------------------------------------------- CRDs and the default table


def jsonpath_value(obj: Any, path: str) -> tuple[bool, Any]:
    """Evaluate a simple JSONPath (`.a.b`, `.a[0].b`, `.a['x.y']`) as CRD printer columns allow."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    p = p.lstrip("$")
    cur: Any = obj
    i = 0
    while i < len(p):
        if p[i] == ".":
            j = i + 1
            while j < len(p) and p[j] not in ".[":
                j += 1
            key = p[i + 1 : j]
            if key:
                if not isinstance(cur, dict) or key not in cur:
                    return False, None
                cur = cur[key]
            i = j
        elif p[i] == "[":
            j = p.index("]", i)
            inner = p[i + 1 : j].strip()
            if inner[:1] in "'\"":
                key = inner[1:-1]
                if not isinstance(cur, dict) or key not in cur:
                    return False, None
                cur = cur[key]
            else:
                try:
                    idx = int(inner)
                except ValueError:
                    return False, None
                if not isinstance(cur, list) or not -len(cur) <= idx < len(cur):
                    return False, None
                cur = cur[idx]
            i = j + 1
        else:
            return False, None
    return True, cur


def _crd_cell(typ: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if typ == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return json.dumps(value, separators=(",", ":"))
    if typ == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if typ == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if typ == "boolean" and isinstance(value, bool):
        return value
    if typ == "date" and isinstance(value, str):
        ts = parse_time(value)
        return "<invalid>" if ts is None else human_duration((now - ts).total_seconds())
    return None


def _crd_printer(columns: list[Obj]) -> tuple[list[Obj], Callable[[Obj, datetime], Obj]]:
    cols = columns or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "description": CREATED_DOC}
    ]
    defs = [NAME] + [
        col(
            c["name"],
            c.get("description")
            or f"Custom resource definition column (in JSONPath format): {c.get('jsonPath', '')}",
            c.get("type", "string"),
            c.get("format", ""),
            int(c.get("priority", 0)),
        )
        for c in cols
    ]

    def row(o: Obj, now: datetime) -> Obj:
        cells: list[Any] = [name_of(o)]
        for c in cols:
            found, value = jsonpath_value(o, c.get("jsonPath", ""))
            cells.append(_crd_cell(c.get("type", "string"), value, now) if found else None)
        return {"cells": cells}

    return defs, row


def _default_printer() -> tuple[list[Obj], Callable[[Obj, datetime], Obj]]:
    def row(o: Obj, now: datetime) -> Obj:
        ts = parse_time((o.get("metadata") or {}).get("creationTimestamp"))
        created = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else "0001-01-01T00:00:00Z"
        return {"cells": [name_of(o), created]}

    return [NAME, col("Created At", CREATED_DOC, "date")], row


def _row_object(o: Obj, include_object: str) -> Obj | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return o
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": o.get("metadata") or {},
    }


def to_table(
    resource: str,
    objs: list[Obj],
    printer_columns: list[Obj] | None = None,
    *,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> Obj:
    """A meta.k8s.io/v1 Table for `objs` of `resource` (plural). `printer_columns` are a CRD version's
    additionalPrinterColumns (pass [] for a CRD without any: it gets Age); None means built-in kind.
    The caller fills metadata.resourceVersion/continue as for a list."""
    when = now or datetime.now(UTC)
    if printer_columns is not None:
        columns, printer = _crd_printer(printer_columns)
    elif resource in PRINTERS:
        columns, printer = PRINTERS[resource]
    else:
        columns, printer = _default_printer()
    rows = []
    for o in objs:
        row = printer(o, when)
        obj = _row_object(o, include_object)
        if obj is not None:
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    }
