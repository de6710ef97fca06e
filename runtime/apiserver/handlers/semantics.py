"""One import point for the pure-function semantics the request handlers call (patch, smp, ssa,
selectors, admission, tables), so handlers depend on one small surface."""

from __future__ import annotations

from runtime.apiserver.admission.create import admit_create
from runtime.apiserver.patch.apply import ApplyConflict, server_side_apply, update_managed_fields
from runtime.apiserver.patch.jsonpatch import PatchError, apply_json_patch, apply_merge_patch
from runtime.apiserver.patch.strategic import apply_strategic_merge_patch
from runtime.apiserver.printers.tables import to_table
from runtime.apiserver.registry.selectors import SelectorError, parse_field_selector, parse_label_selector

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
