"""How kube-apiserver prints the value of a patch its strict decoding refused (422 on field `patch`).

A merge patch's value is the patched object as evanphx/json-patch's MergePatch writes it: every map
the patch reached is re-encoded from a Go map (keys sorted), every part it did not reach keeps the
stored object's bytes (its field order), values the patch brought keep the patch's. A strategic merge
patch's value is the patch itself as Go's `%v` prints a map[string]interface{}
(`map[spec:map[replicas:3]]`).
"""

from __future__ import annotations

from typing import Any

import orjson


def merge_patched_text(old: Any, patch: Any) -> str:
    """The JSON text of `old` merge-patched with `patch`, in MergePatch's key order."""
    return orjson.dumps(_merged(old, patch)).decode()


def _merged(old: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    base = old if isinstance(old, dict) else {}
    out: dict[str, Any] = {}
    for k in sorted(base.keys() | patch.keys()):
        if k not in patch:
            out[k] = base[k]
        elif patch[k] is not None:
            value = patch[k]
            out[k] = (
                _merged(base.get(k), value)
                if isinstance(value, dict) and isinstance(base.get(k), dict)
                else value
            )
    return out


def go_value_text(v: Any) -> str:
    """Go's %v of a decoded JSON value (numbers are float64: 1 prints as 1, 0.5 as 0.5)."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value_text(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_value_text(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return str(v)
