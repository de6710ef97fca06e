"""Server-side apply and managedFields, following structured-merge-diff's Updater.

Apply (application/apply-patch+yaml, lightkube's `apply()`, `kubectl apply --server-side`): the applied
configuration is merged into the live object; the applier then owns exactly the fields it applied;
fields it owned before but no longer applies are removed unless another manager owns them; changing a
field another manager owns is a 409 conflict unless `force`. Update/Create writes (PUT, POST, patches):
the writer takes the fields it added or changed, other managers lose them. A re-apply that changes
nothing returns the live object unchanged, managedFields and timestamps included, so the server can
skip the write and keep the resourceVersion.

Here: how each write moves fields between managers. The managedFields entries themselves are in
managers.py, the typed merge and field removal in apply_merge.py.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from runtime.apiserver.patch.apply_merge import merge, remove_paths
from runtime.apiserver.patch.crdtypes import root_of
from runtime.apiserver.patch.createfields import UNOWNED_META, create_fields_v1
from runtime.apiserver.patch.fieldsets import Path, Struct, compare, path_string, root_struct, to_field_set
from runtime.apiserver.patch.managers import (
    Obj,
    add_manager,
    managers_of,
    with_entries,
    with_managers,
    without_managed_fields,
)

# stripmeta: fields no manager ever owns.
_STRIPPED: set[Path] = {
    (("f", "apiVersion"),),
    (("f", "kind"),),
    *((("f", "metadata"), ("f", k)) for k in UNOWNED_META),
}


class ApplyConflict(Exception):
    """409 Conflict from server-side apply; `conflicts` are Kubernetes' per-field messages, `causes` the
    Status details causes (type FieldManagerConflict)."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        self.conflicts = [f"conflict with {who}: {path}" for who, path in conflicts]
        self.causes = [
            {"type": "FieldManagerConflict", "message": f"conflict with {who}", "field": path}
            for who, path in conflicts
        ]
        if len(conflicts) == 1:
            message = f"Apply failed with 1 conflict: {self.conflicts[0]}"
        else:
            by: dict[str, list[str]] = {}
            for who, path in conflicts:
                by.setdefault(who, []).append(path)
            lines = []
            for who in sorted(by):
                lines.append(f"conflicts with {who}:")
                lines.extend(f"- {p}" for p in by[who])
            message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        super().__init__(message)
        self.message = message


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _filter(paths: set[Path], subresource: str, reset_status: bool) -> set[Path]:
    out = set()
    for p in paths:
        if p[:2] in _STRIPPED or p[:1] in _STRIPPED or p == (("f", "metadata"),):
            continue
        if subresource == "status" and p[:1] != (("f", "status"),):
            continue
        if subresource == "" and reset_status and p[:1] == (("f", "status"),):
            continue
        out.add(p)
    return out


# What a typed object of a kind holds before any write beyond empty metadata/spec/status: struct
# (not pointer) fields, empty; embedded ObjectMeta's creationTimestamp, null; plain fields, their
# zero value. A create owns what it changes against this, so no "." on those structs and nothing
# for the zero values (only the parts the new object has are used).
_POD_TEMPLATE: Obj = {"metadata": {"creationTimestamp": None}, "spec": {"containers": []}}
_ZERO: dict[str, Obj] = {
    "Pod": {"spec": {"containers": []}},
    "Deployment": {"spec": {"template": _POD_TEMPLATE, "strategy": {}}},
    "ReplicaSet": {"spec": {"template": _POD_TEMPLATE}},
    "ReplicationController": {"spec": {"template": _POD_TEMPLATE}},
    "DaemonSet": {"spec": {"template": _POD_TEMPLATE, "updateStrategy": {}}},
    "StatefulSet": {"spec": {"template": _POD_TEMPLATE, "updateStrategy": {}}},
    "Job": {"spec": {"template": _POD_TEMPLATE}},
    "CronJob": {
        "spec": {
            "jobTemplate": {"metadata": {"creationTimestamp": None}, "spec": {"template": _POD_TEMPLATE}}
        }
    },
    "PersistentVolumeClaim": {"spec": {"resources": {}}},
    "CustomResourceDefinition": {"spec": {"names": {}}},
    "Event": {"source": {}, "eventTime": None, "reportingComponent": "", "reportingInstance": ""},
}


def _zero_of(zero: Obj, new: Obj) -> Obj:
    """The part of a kind's zero value that `new` has (maps recursively; values as they are)."""
    out: Obj = {}
    for k, z in zero.items():
        if k not in new:
            continue
        if isinstance(z, dict):
            if isinstance(new[k], dict):
                out[k] = _zero_of(z, new[k])
        elif isinstance(z, list):
            if isinstance(new[k], list):
                out[k] = []
        else:
            out[k] = z
    return out


def _skeleton(new: Obj, typed: bool = True) -> Obj:
    """The typed zero value a create is compared against: struct fields exist (empty). A custom
    resource is unstructured: only its metadata is there before the write (so a create owns `spec`
    itself too, `f:spec: {".": {}, ...}`)."""
    if not typed:
        return {"metadata": {}} if isinstance(new.get("metadata"), dict) else {}
    base: Obj = {k: {} for k in ("metadata", "spec", "status") if isinstance(new.get(k), dict)}
    zero = _ZERO.get(str(new.get("kind")))
    if zero is not None:
        base.update(_zero_of(zero, new))
    return base


# ---------------------------------------------------------------- Update / Create


def update_managed_fields(
    old: Obj | None,
    new: Obj,
    *,
    manager: str,
    operation: str = "Update",
    api_version: str | None = None,
    subresource: str = "",
    reset_status: bool = True,
    time: str | None = None,
    typed: bool = True,
    schema: Obj | None = None,
) -> Obj:
    """`new` with managedFields after a write by `manager` (Create and Update are both "Update");
    `typed` False for a custom resource (see _skeleton), `schema` its CRD's structural schema."""
    version = api_version or str(new.get("apiVersion", ""))
    meta_new = new.get("metadata") or {}
    explicit = "managedFields" in meta_new and isinstance(meta_new["managedFields"], list)
    if old is None and not explicit and not subresource and reset_status:
        return _created(new, manager, version, time, typed, schema)
    if explicit and (
        old is None or meta_new["managedFields"] != (old.get("metadata") or {}).get("managedFields")
    ):
        managers = managers_of(new)  # the client set managedFields explicitly ([] resets them)
    else:
        managers = managers_of(old)
    if old is not None and not managers:
        # skipNonAppliedManager: an existing object nobody tracks stays untracked until its first apply.
        return with_managers(new, [])
    before = without_managed_fields(old) if old is not None else _skeleton(new, typed)
    after = without_managed_fields(new)
    struct = _root(new, schema)
    added, modified, removed = (_filter(s, subresource, reset_status) for s in compare(before, after, struct))
    changed = added | modified
    for m in managers:
        m.fields -= changed
        m.fields -= removed
    if changed:
        ident = (manager, "Update", version, subresource)
        mine = next((m for m in managers if m.ident == ident), None)
        if mine is None:
            mine = add_manager(managers, manager, "Update", version, subresource)
        mine.fields |= changed
        mine.entry["time"] = time or now_rfc3339()
    return with_managers(new, managers)


def _root(obj: Obj, schema: Obj | None) -> Struct:
    """The object's type: its CRD's schema, or the built-in struct of its kind."""
    return root_of(schema) if schema is not None else root_struct(str(obj.get("kind", "")))


def _created(new: Obj, manager: str, version: str, time: str | None, typed: bool, schema: Obj | None) -> Obj:
    """The common create (no previous managers, main resource): FieldsV1 built in one walk."""
    fields = create_fields_v1(_skeleton(new, typed), new, _root(new, schema))
    if not fields:
        return with_entries(new, [])
    entry = {
        "manager": manager,
        "operation": "Update",
        "apiVersion": version,
        "time": time or now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    return with_entries(new, [entry])


# ---------------------------------------------------------------- Apply


def _covered(path: Path, owned: set[Path]) -> bool:
    """Whether anyone owns the path or something below it (owning a parent map does not keep a child)."""
    n = len(path)
    return any(o[:n] == path for o in owned)


def server_side_apply(
    live: Obj | None,
    applied: Obj,
    *,
    manager: str,
    force: bool,
    kind: str,
    api_version: str,
    subresource: str = "",
    time: str | None = None,
    schema: Obj | None = None,
) -> Obj:
    """The object after `manager` applies `applied` to `live` (None: create); `schema`: a custom
    resource's CRD schema (its list and map types). Raises ApplyConflict."""
    struct = root_of(schema) if schema is not None else root_struct(kind)
    managers = managers_of(live)
    base = without_managed_fields(live) if live is not None else _skeleton(applied)
    if live is not None and not managers:
        # Objects never written with field tracking: everything so far belongs to "before-first-apply".
        added, modified, _ = compare(_skeleton(base), base, struct)
        first = add_manager(managers, "before-first-apply", "Update", api_version)
        first.fields = _filter(added | modified, "", True)
    config = without_managed_fields(applied)
    config = _drop_nulls(config)
    merged = merge(base, config, struct)
    applied_set = _filter(to_field_set(config, struct), subresource, subresource == "")
    ident = (manager, "Apply", "", subresource)
    mine = next((m for m in managers if m.ident == ident), None)
    last = set(mine.fields) if mine else set()
    others = [m for m in managers if m is not mine]
    # Prune: fields this manager applied before and nobody owns now.
    owned_now = applied_set.union(*(m.fields for m in others))
    stale = {p for p in last - applied_set if not _covered(p, owned_now)}
    merged = remove_paths(merged, stale, struct)
    added, modified, removed = compare(base, merged, struct)
    changed = _filter(added | modified, subresource, subresource == "")
    conflicts: list[tuple[str, str]] = []
    for m in others:
        hit = m.fields & changed
        if hit and not force:
            conflicts.extend((m.describe(), path_string(p)) for p in sorted(hit))
        m.fields -= changed if force else set()
        m.fields -= _filter(removed, subresource, subresource == "")
    if conflicts:
        raise ApplyConflict(conflicts)
    if live is not None and merged == base and mine is not None and mine.fields == applied_set:
        return copy.deepcopy(live)  # no-op: identical object, identical managedFields
    if mine is None:
        mine = add_manager(managers, manager, "Apply", api_version, subresource)
    mine.entry["apiVersion"] = api_version
    mine.fields = applied_set
    mine.entry["time"] = time or now_rfc3339()
    result = copy.deepcopy(merged)
    if live is not None:
        result.setdefault("metadata", {}).update(
            {k: v for k, v in (live.get("metadata") or {}).items() if k in _LIVE_META}
        )
    return with_managers(result, managers)


_LIVE_META = {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation", "selfLink"}


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v
