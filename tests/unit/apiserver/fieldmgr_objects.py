"""Objects and times the field-manager tests (test_ssa.py, test_managed_fields.py) share."""

from __future__ import annotations

import json
from typing import Any

T1, T2 = "2026-11-28T10:00:00Z", "2026-11-28T10:05:00Z"

CM = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "default", "labels": {"app": "x"}},
    "data": {"a": "1", "b": "2"},
}


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the server stores after create (uid/resourceVersion are the core's)."""
    out = json.loads(json.dumps(obj))
    out["metadata"].update({"uid": "u1", "resourceVersion": "5", "creationTimestamp": T1})
    return out
