"""One import point for the pure-function semantics the request handlers call (patch, smp, ssa,
selectors, admission, tables), so handlers depend on one small surface."""

from __future__ import annotations

from runtime.apiserver.admission import admit_create
from runtime.apiserver.patch import PatchError, apply_json_patch, apply_merge_patch
from runtime.apiserver.selectors import SelectorError, parse_field_selector, parse_label_selector
from runtime.apiserver.smp import apply_strategic_merge_patch
from runtime.apiserver.ssa import ApplyConflict, server_side_apply, update_managed_fields
from runtime.apiserver.tables import to_table

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
