"""managedFields entries: who owns which fields of an object, read from and written back to metadata.

Each entry (manager, operation, apiVersion, subresource) owns a set of field paths, stored as FieldsV1
JSON. runtime/apiserver/patch/apply.py decides how a write moves fields between managers; this module turns
the entries into `Manager`s with path sets and back, in the order kube-apiserver lists them.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.apiserver.patch.fieldsets import Path, from_fields_v1, to_fields_v1

Obj = dict[str, Any]


class Manager:
    """One managedFields entry: its identity and metadata (`entry`) and the paths it owns (`fields`)."""

    def __init__(self, entry: Obj) -> None:
        self.entry = {k: v for k, v in entry.items() if k not in ("fieldsV1", "fieldsType")}
        self.fields: set[Path] = from_fields_v1(entry.get("fieldsV1") or {})

    @property
    def ident(self) -> tuple[str, str, str, str]:
        e = self.entry
        version = "" if e.get("operation") == "Apply" else str(e.get("apiVersion", ""))
        return (
            str(e.get("manager", "")),
            str(e.get("operation", "")),
            version,
            str(e.get("subresource", "")),
        )

    def describe(self) -> str:
        e = self.entry
        who = json.dumps(e.get("manager", ""))
        if e.get("subresource"):
            who += f" with subresource {json.dumps(e['subresource'])}"
        if e.get("operation") == "Update":
            who += f" using {e.get('apiVersion', '')}"
        return who

    def encode(self) -> Obj:
        out = dict(self.entry)
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_fields_v1(self.fields)
        order = ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"]
        return {k: out[k] for k in order if k in out}


def add_manager(
    managers: list[Manager], manager: str, operation: str, api_version: str, subresource: str = ""
) -> Manager:
    """A new, empty entry for a writer that has none yet, appended to `managers`."""
    entry: Obj = {"manager": manager, "operation": operation, "apiVersion": api_version}
    if subresource:
        entry["subresource"] = subresource
    added = Manager(entry)
    managers.append(added)
    return added


def managers_of(obj: Obj | None) -> list[Manager]:
    """The object's managedFields entries (none for None or an untracked object)."""
    entries = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [Manager(e) for e in entries if isinstance(e, dict)]


def _encode(managers: list[Manager]) -> list[Obj]:
    live = [m for m in managers if m.fields]
    live.sort(
        key=lambda m: (
            m.entry.get("operation", ""),
            m.entry.get("time", ""),
            m.entry.get("manager", ""),
            m.entry.get("apiVersion", ""),
            m.entry.get("subresource", ""),
        )
    )
    return [m.encode() for m in live]


def with_managers(obj: Obj, managers: list[Manager]) -> Obj:
    """`obj` with the managers' entries as metadata.managedFields (managers owning nothing dropped)."""
    return with_entries(obj, _encode(managers))


def with_entries(obj: Obj, entries: list[Obj]) -> Obj:
    """A copy sharing everything but the top level and metadata (callers never mutate nested values),
    with metadata.managedFields set to `entries`, or left out when there are none."""
    out = dict(obj)
    meta = out["metadata"] = dict(out.get("metadata") or {})
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
    return out


def without_managed_fields(obj: Obj) -> Obj:
    """A shallow view without metadata.managedFields, for read-only comparison."""
    out = dict(obj)
    if isinstance(out.get("metadata"), dict) and "managedFields" in out["metadata"]:
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    return out
