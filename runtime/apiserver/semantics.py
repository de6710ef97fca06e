"""One import point for the pure-function semantics (patch, smp, ssa, selectors, admission, tables).

Those modules are written in parallel; until one lands, a minimal stand-in here keeps the server
usable. Each stand-in is deliberately small and is replaced by the real module as soon as it imports.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


class _FallbackError(Exception):
    pass


# -- patches ------------------------------------------------------------------------------------
try:
    from runtime.apiserver.patch import PatchError, apply_json_patch, apply_merge_patch
except ImportError:  # pragma: no cover - until patch.py lands
    PatchError = _FallbackError  # type: ignore[misc,assignment]

    def apply_merge_patch(obj: Obj, patch: Obj) -> Obj:  # type: ignore[misc]
        def merge(a: Any, b: Any) -> Any:
            if not isinstance(b, dict):
                return copy.deepcopy(b)
            out = dict(a) if isinstance(a, dict) else {}
            for k, v in b.items():
                if v is None:
                    out.pop(k, None)
                else:
                    out[k] = merge(out.get(k), v)
            return out

        result: Obj = merge(obj, patch)
        return result

    def apply_json_patch(obj: Obj, ops: list[Any]) -> Obj:  # type: ignore[misc]
        import jsonpatch

        try:
            out: Obj = jsonpatch.apply_patch(obj, ops)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise _FallbackError(str(exc)) from exc
        return out


try:
    from runtime.apiserver.smp import apply_strategic_merge_patch
except ImportError:  # pragma: no cover

    def apply_strategic_merge_patch(obj: Obj, patch: Obj, kind: str, api_version: str) -> Obj:  # type: ignore[misc]
        def strip(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: strip(x) for k, x in v.items() if not k.startswith("$")}
            return v

        return apply_merge_patch(obj, strip(patch))


try:
    from runtime.apiserver.ssa import ApplyConflict, server_side_apply, update_managed_fields
except ImportError:  # pragma: no cover

    class ApplyConflict(Exception):  # type: ignore[no-redef]
        def __init__(self, conflicts: list[str]) -> None:
            super().__init__("; ".join(conflicts))
            self.conflicts = conflicts

    def server_side_apply(  # type: ignore[misc]
        live: Obj | None, applied: Obj, *, manager: str, force: bool, kind: str, api_version: str
    ) -> Obj:
        return apply_merge_patch(live or {}, applied)

    def update_managed_fields(  # type: ignore[misc]
        old: Obj | None, new: Obj, *, manager: str, operation: str
    ) -> Obj:
        return new


# -- selectors ----------------------------------------------------------------------------------
from runtime.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector  # noqa: E402

# -- admission ----------------------------------------------------------------------------------
try:
    from runtime.apiserver.admission import admit_create
except ImportError:  # pragma: no cover

    def admit_create(resource: str, obj: Obj) -> Obj:  # type: ignore[misc]
        if resource == "pods":
            obj.setdefault("status", {})["phase"] = "Pending"
        return obj


# -- tables -------------------------------------------------------------------------------------
try:
    from runtime.apiserver.tables import to_table
except ImportError:  # pragma: no cover

    def to_table(  # type: ignore[misc]
        resource: str, objs: list[Obj], printer_columns: list[Obj] | None = None
    ) -> Obj:
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0},
            ],
            "rows": [
                {"cells": [o.get("metadata", {}).get("name", "")], "object": {
                    "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata", {})}}
                for o in objs
            ],
        }


__all__ = [
    "ApplyConflict",
    "PatchError",
    "SelectorError",
    "admit_create",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "parse_field_selector",
    "parse_label_selector",
    "server_side_apply",
    "to_table",
    "update_managed_fields",
]
