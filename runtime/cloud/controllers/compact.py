"""Shared strings for the objects the cloud keeps per edge node (its Node, pods, what they reference).

Why: ``json.loads`` makes a new string for every key and value of every object, so 10,000 Nodes hold
10,000 copies of "lastHeartbeatTime", "f:conditions", "True", "amd64"… — over half of a Node's ~10 KB
in memory (managedFields repeats the object's shape as keys). Interning keys and short values shares
one copy of each; the object is otherwise equal, so nothing downstream can tell.
"""

from __future__ import annotations

import sys
from typing import Any

SHORT = 64  # longer strings (data, certificates, last-applied annotations) are rarely repeated


def shared_strings(obj: Any) -> Any:
    """A copy of a decoded JSON value with dict keys and strings up to ``SHORT`` chars interned."""
    if isinstance(obj, dict):
        return {sys.intern(k): shared_strings(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shared_strings(v) for v in obj]
    if isinstance(obj, str) and len(obj) <= SHORT:
        return sys.intern(obj)
    return obj
