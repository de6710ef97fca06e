"""The names a CRD may serve and its NamesAccepted / Established conditions, computed as
kube-apiserver's naming and establishing controllers do (apiextensions-apiserver, pkg/controller/status).

Pure functions over CRD objects; CrdController (crds.py) runs them after every CRD write. A name is
taken when another CRD of the same group has accepted it (`status.acceptedNames`: plural, singular and
short names share one set, kind and listKind another); a requested name that is taken stays out of
the accepted names and NamesAccepted turns False with the conflict's reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]
NAME_FIELDS = ("plural", "singular", "shortNames", "kind", "listKind", "categories")


def _names(names: Any) -> Obj:
    """CustomResourceDefinitionNames in Go's field order, the empty optional fields left out."""
    names = names if isinstance(names, dict) else {}
    out: Obj = {"plural": names.get("plural") or ""}
    for field in ("singular", "shortNames"):
        if names.get(field):
            out[field] = names[field]
    out["kind"] = names.get("kind") or ""
    for field in ("listKind", "categories"):
        if names.get(field):
            out[field] = names[field]
    return out


def accepted_names(crd: Obj) -> Obj:
    return _names((crd.get("status") or {}).get("acceptedNames"))


def names_settled(crd: Obj) -> bool:
    """The requested names are the accepted ones (the naming controller has nothing to do)."""
    return _names((crd.get("spec") or {}).get("names")) == accepted_names(crd)


def condition(crd: Obj, kind: str) -> Obj | None:
    conds = (crd.get("status") or {}).get("conditions") or []
    return next((c for c in conds if isinstance(c, dict) and c.get("type") == kind), None)


def is_true(crd: Obj, kind: str) -> bool:
    c = condition(crd, kind)
    return c is not None and c.get("status") == "True"


def refused(crd: Obj) -> bool:
    """Not servable: the names were not accepted and the CRD was never established."""
    c = condition(crd, "NamesAccepted")
    return c is not None and c.get("status") == "False" and not is_true(crd, "Established")


def _taken(crds: Iterable[Obj], group: str) -> tuple[set[str], set[str]]:
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in crds:
        if (other.get("spec") or {}).get("group") != group:
            continue
        acc = accepted_names(other)
        resources.update([acc["plural"], acc.get("singular", ""), *acc.get("shortNames", [])])
        kinds.update([acc["kind"], acc.get("listKind", "")])
    return resources, kinds


def _in_use(requested: str, accepted: str, used: set[str]) -> str | None:
    if requested == accepted or requested not in used:
        return None
    return f'"{requested}" is already in use'


def decide(crd: Obj, crds: Iterable[Obj]) -> tuple[Obj, Obj, Obj]:
    """(accepted names, NamesAccepted, Established) for `crd` given every stored CRD (itself included),
    as calculateNamesAndConditions: each conflict keeps the name accepted before, the last found names
    the reason."""
    spec = crd.get("spec") or {}
    requested, accepted = _names(spec.get("names")), accepted_names(crd)
    resources, kinds = _taken(crds, spec.get("group", ""))
    new = dict(accepted)
    conflict: tuple[str, str] | None = None
    checks = (("plural", resources, "PluralConflict"), ("singular", resources, "SingularConflict"))
    for field, used, reason in checks:
        err = _in_use(requested.get(field, ""), accepted.get(field, ""), used)
        if err:
            conflict = (reason, err)
        else:
            new[field] = requested.get(field, "")
    if requested.get("shortNames", []) != accepted.get("shortNames", []):
        own = set(accepted.get("shortNames", []))
        errs = [
            e for s in requested.get("shortNames", []) if s not in own and (e := _in_use(s, "", resources))
        ]
        if errs:
            conflict = ("ShortNamesConflict", errs[0] if len(errs) == 1 else f"[{', '.join(errs)}]")
        else:
            new["shortNames"] = requested.get("shortNames", [])
    for field, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
        err = _in_use(requested.get(field, ""), accepted.get(field, ""), kinds)
        if err:
            conflict = (reason, err)
        else:
            new[field] = requested.get(field, "")
    new["categories"] = requested.get("categories", [])
    names_cond = {
        "type": "NamesAccepted",
        "status": "True",
        "reason": "NoConflicts",
        "message": "no conflicts found",
    }
    if conflict is not None:
        names_cond = {
            "type": "NamesAccepted",
            "status": "False",
            "reason": conflict[0],
            "message": conflict[1],
        }
    established = condition(crd, "Established") or {
        "type": "Established",
        "status": "False",
        "reason": "NotAccepted",
        "message": "not all names are accepted",
    }
    if established.get("status") != "True" and names_cond["status"] == "True":
        established = {
            "type": "Established",
            "status": "False",
            "reason": "Installing",
            "message": "the initial names have been accepted",
        }
    return _names(new), names_cond, established


def established() -> Obj:
    """The establishing controller's condition, once the names are accepted."""
    return {
        "type": "Established",
        "status": "True",
        "reason": "InitialNamesAccepted",
        "message": "the initial names have been accepted",
    }


def equivalent(a: Obj | None, b: Obj | None) -> bool:
    """IsCRDConditionEquivalent: same type, status, reason and message (times aside)."""
    if a is None or b is None:
        return a is b
    return all(a.get(k) == b.get(k) for k in ("type", "status", "reason", "message"))


def set_condition(crd: Obj, cond: Obj, now: str) -> None:
    """SetCRDCondition: replace the condition of that type (its transition time kept when the status is
    the same) or append it."""
    status = crd.setdefault("status", {})
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    old = next((c for c in conds if c.get("type") == cond["type"]), None)
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == cond["status"] else now
    new = {"type": cond["type"], "status": cond["status"], "lastTransitionTime": since}
    new.update({k: cond[k] for k in ("reason", "message") if cond.get(k)})
    status["conditions"] = [new if c is old else c for c in conds] if old is not None else [*conds, new]
