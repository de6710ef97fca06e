"""Server-side apply and managedFields, following structured-merge-diff's Updater.

Apply (application/apply-patch+yaml, lightkube's `apply()`, `kubectl apply --server-side`): the applied
configuration is merged into the live object; the applier then owns exactly the fields it applied;
fields it owned before but no longer applies are removed unless another manager owns them; changing a
field another manager owns is a 409 conflict unless `force`. Update/Create writes (PUT, POST, patches):
the writer takes the fields it added or changed, other managers lose them. A re-apply that changes
nothing returns the live object unchanged, managedFields and timestamps included, so the server can
skip the write and keep the resourceVersion.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from runtime.apiserver.createfields import UNOWNED_META, create_fields_v1
from runtime.apiserver.fieldsets import (
    ATOMIC_FIELDS,
    ListType,
    Path,
    compare,
    field_struct,
    from_fields_v1,
    item_elem,
    list_type,
    path_string,
    root_struct,
    to_field_set,
    to_fields_v1,
)

Obj = dict[str, Any]

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


# ---------------------------------------------------------------- managers


class Manager:
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


def _decode(obj: Obj | None) -> list[Manager]:
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


def _skeleton(new: Obj) -> Obj:
    """The typed zero value a create is compared against: struct fields exist (empty)."""
    base: Obj = {k: {} for k in ("metadata", "spec", "status") if isinstance(new.get(k), dict)}
    if new.get("kind") == "Pod" and isinstance(new.get("spec"), dict):
        base["spec"] = {"containers": []} if "containers" in new["spec"] else {}
    return base


def _with_fields(obj: Obj, managers: list[Manager]) -> Obj:
    """A copy sharing everything but the top level and metadata (callers never mutate nested values)."""
    out = dict(obj)
    encoded = _encode(managers)
    meta = out["metadata"] = dict(out.get("metadata") or {})
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)
    return out


def _strip_meta(obj: Obj) -> Obj:
    """A shallow view without metadata.managedFields, for read-only comparison."""
    out = dict(obj)
    if isinstance(out.get("metadata"), dict) and "managedFields" in out["metadata"]:
        out["metadata"] = {k: v for k, v in out["metadata"].items() if k != "managedFields"}
    return out


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
) -> Obj:
    """`new` with managedFields after a write by `manager` (Create and Update are both "Update")."""
    version = api_version or str(new.get("apiVersion", ""))
    meta_new = new.get("metadata") or {}
    explicit = "managedFields" in meta_new and isinstance(meta_new["managedFields"], list)
    if old is None and not explicit and not subresource and reset_status:
        return _created(new, manager, version, time)
    if explicit and (
        old is None or meta_new["managedFields"] != (old.get("metadata") or {}).get("managedFields")
    ):
        managers = _decode(new)  # the client set managedFields explicitly ([] resets them)
    else:
        managers = _decode(old)
    if old is not None and not managers:
        # skipNonAppliedManager: an existing object nobody tracks stays untracked until its first apply.
        return _with_fields(new, [])
    before = _strip_meta(old) if old is not None else _skeleton(new)
    after = _strip_meta(new)
    struct = root_struct(str(new.get("kind", "")))
    added, modified, removed = (_filter(s, subresource, reset_status) for s in compare(before, after, struct))
    changed = added | modified
    for m in managers:
        m.fields -= changed
        m.fields -= removed
    if changed:
        ident = (manager, "Update", version, subresource)
        mine = next((m for m in managers if m.ident == ident), None)
        if mine is None:
            entry = {"manager": manager, "operation": "Update", "apiVersion": version}
            if subresource:
                entry["subresource"] = subresource
            mine = Manager(entry)
            managers.append(mine)
        mine.fields |= changed
        mine.entry["time"] = time or now_rfc3339()
    return _with_fields(new, managers)


def _created(new: Obj, manager: str, version: str, time: str | None) -> Obj:
    """The common create (no previous managers, main resource): FieldsV1 built in one walk."""
    fields = create_fields_v1(_skeleton(new), new, root_struct(str(new.get("kind", ""))))
    out = dict(new)
    meta = out["metadata"] = dict(out.get("metadata") or {})
    if fields:
        entry = {
            "manager": manager,
            "operation": "Update",
            "apiVersion": version,
            "time": time or now_rfc3339(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        meta["managedFields"] = [entry]
    else:
        meta.pop("managedFields", None)
    return out


# ---------------------------------------------------------------- merge (typed)


def merge(live: Any, config: Any, struct: str | None) -> Any:
    """TypedValue.Merge: config wins for scalars and atomic values; maps and keyed lists merge."""
    if isinstance(live, dict) and isinstance(config, dict):
        out = dict(live)
        for k, v in config.items():
            if k in out and k not in ATOMIC_FIELDS:
                if isinstance(out[k], list) and isinstance(v, list):
                    out[k] = _merge_list(out[k], v, list_type(struct, k))
                    continue
                if isinstance(out[k], dict) and isinstance(v, dict):
                    out[k] = merge(out[k], v, field_struct(struct, k))
                    continue
            out[k] = copy.deepcopy(v)
        return out
    return copy.deepcopy(config)


def _merge_list(lhs: list[Any], rhs: list[Any], lt: ListType) -> list[Any]:
    """mergingWalker.visitListItems: a two-pointer walk keeping live order, shared items in config order."""
    if lt.kind == "atomic":
        return copy.deepcopy(rhs)
    lpe = [item_elem(lt, it, i) for i, it in enumerate(lhs)]
    rpe = [item_elem(lt, it, i) for i, it in enumerate(rhs)]
    lmap = dict(zip(lpe, lhs, strict=True))
    rmap = dict(zip(rpe, rhs, strict=True))
    shared = [pe for pe in rpe if pe in lmap]
    next_shared = shared.pop(0) if shared else None
    merged_r: set[Any] = set()
    out: list[Any] = []

    def item(pe: Any) -> Any:
        if pe in lmap and pe in rmap:
            return merge(lmap[pe], rmap[pe], lt.elem) if lt.kind == "map" else copy.deepcopy(rmap[pe])
        return copy.deepcopy(rmap.get(pe, lmap.get(pe)))

    li = ri = 0
    while li < len(lpe) or ri < len(rpe):
        if li < len(lpe) and ri < len(rpe):
            pe = lpe[li]
            if pe == rpe[ri]:
                merged_r.add(pe)
                out.append(item(pe))
                li += 1
                ri += 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in rmap and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lpe):
            pe = lpe[li]
            if pe not in rmap:
                out.append(copy.deepcopy(lhs[li]))
                li += 1
                continue
            if pe in merged_r:
                li += 1
                continue
        if ri < len(rpe):
            pe = rpe[ri]
            merged_r.add(pe)
            out.append(item(pe))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# ---------------------------------------------------------------- removal


def remove_paths(obj: Any, paths: set[Path], struct: str | None) -> Any:
    """A copy of obj without the given fields / list items; maps emptied by the removal disappear."""
    out = copy.deepcopy(obj)
    for path in sorted(paths, key=len, reverse=True):
        _remove(out, path, struct)
    return out


def _remove(node: Any, path: Path, struct: str | None) -> bool:
    if not path or not isinstance(node, dict):
        return False
    (kind, name), rest = path[0], path[1:]
    if kind != "f" or name not in node:
        return False
    if not rest:
        del node[name]
        return True
    child = node[name]
    if isinstance(child, dict):
        gone = _remove(child, rest, field_struct(struct, name))
        if gone and not child:
            del node[name]
        return gone
    if isinstance(child, list):
        lt = list_type(struct, name)
        for i, it in enumerate(child):
            if item_elem(lt, it, i) == rest[0]:
                if len(rest) == 1:
                    del child[i]
                else:
                    _remove(it, rest[1:], lt.elem)
                if not child:
                    del node[name]
                return True
    return False


def _covered(path: Path, owned: set[Path]) -> bool:
    """Whether anyone owns the path or something below it (owning a parent map does not keep a child)."""
    n = len(path)
    return any(o[:n] == path for o in owned)


# ---------------------------------------------------------------- Apply


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
) -> Obj:
    """The object after `manager` applies `applied` to `live` (None: create). Raises ApplyConflict."""
    struct = root_struct(kind)
    managers = _decode(live)
    base = _strip_meta(live) if live is not None else _skeleton(applied)
    if live is not None and not managers:
        # Objects never written with field tracking: everything so far belongs to "before-first-apply".
        first = Manager({"manager": "before-first-apply", "operation": "Update", "apiVersion": api_version})
        added, modified, _ = compare(_skeleton(base), base, struct)
        first.fields = _filter(added | modified, "", True)
        managers.append(first)
    config = _strip_meta(applied)
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
        entry: Obj = {"manager": manager, "operation": "Apply", "apiVersion": api_version}
        if subresource:
            entry["subresource"] = subresource
        mine = Manager(entry)
        managers.append(mine)
    mine.entry["apiVersion"] = api_version
    mine.fields = applied_set
    mine.entry["time"] = time or now_rfc3339()
    result = copy.deepcopy(merged)
    if live is not None:
        result.setdefault("metadata", {}).update(
            {k: v for k, v in (live.get("metadata") or {}).items() if k in _LIVE_META}
        )
    return _with_fields(result, managers)


_LIVE_META = {"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "generation", "selfLink"}


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v
