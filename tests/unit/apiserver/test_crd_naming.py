"""The naming step's decisions (registry/crdnames.py), as kube-apiserver's naming controller makes them:
which requested names a CRD gets given the names the other CRDs of its group hold, and the reason."""

from __future__ import annotations

from typing import Any

from runtime.apiserver.registry.crdnames import decide, set_condition


def crd(
    plural: str, kind: str, group: str = "ex.com", accepted: dict[str, Any] | None = None, **names: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "listKind": f"{kind}List",
                **names,
            },
        },
    }
    if accepted is not None:
        obj["status"] = {"acceptedNames": accepted}
    return obj


def held(c: dict[str, Any]) -> dict[str, Any]:
    """`c` as it is once its names were accepted."""
    return {**c, "status": {"acceptedNames": dict(c["spec"]["names"])}}


def test_free_names_are_all_accepted_and_establishing_is_next() -> None:
    new = crd("widgets", "Widget", shortNames=["wd"], categories=["all"])
    names, naming, established = decide(new, [new, held(crd("gadgets", "Gadget"))])
    assert names == {
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wd"],
        "kind": "Widget",
        "listKind": "WidgetList",
        "categories": ["all"],
    }
    assert naming == {
        "type": "NamesAccepted",
        "status": "True",
        "reason": "NoConflicts",
        "message": "no conflicts found",
    }
    assert established["status"] == "False" and established["reason"] == "Installing"


def test_names_held_in_another_group_do_not_conflict() -> None:
    new = crd("widgets", "Widget")
    _, naming, _ = decide(new, [new, held(crd("widgets", "Widget", group="other.com"))])
    assert naming["status"] == "True"


def test_a_plural_held_as_another_crds_short_name_is_refused_the_rest_accepted() -> None:
    new = crd("widgets", "Widget")
    names, naming, established = decide(new, [new, held(crd("gadgets", "Gadget", shortNames=["widgets"]))])
    assert names == {"plural": "", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}
    assert naming == {
        "type": "NamesAccepted",
        "status": "False",
        "reason": "PluralConflict",
        "message": '"widgets" is already in use',
    }
    assert established == {
        "type": "Established",
        "status": "False",
        "reason": "NotAccepted",
        "message": "not all names are accepted",
    }


def test_the_last_conflict_found_names_the_reason() -> None:
    new = crd("gadgets", "Widget")  # kind and list kind both held: listKind is checked last
    _, naming, _ = decide(new, [new, held(crd("widgets", "Widget"))])
    assert (naming["reason"], naming["message"]) == ("ListKindConflict", '"WidgetList" is already in use')


def test_several_short_names_held_are_listed_together() -> None:
    new = crd("widgets", "Widget", shortNames=["a", "b", "c"])
    other = held(crd("gadgets", "Gadget", shortNames=["a", "c"]))
    names, naming, _ = decide(new, [new, other])
    assert (naming["reason"], naming["message"]) == (
        "ShortNamesConflict",
        '["a" is already in use, "c" is already in use]',
    )
    assert "shortNames" not in names


def test_a_renamed_kind_that_is_taken_keeps_the_kind_accepted_before() -> None:
    accepted = {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"}
    renamed = crd("widgets", "Gadget", accepted=accepted, singular="widget", listKind="WidgetList")
    renamed["status"]["conditions"] = [{"type": "Established", "status": "True", "lastTransitionTime": "t0"}]
    names, naming, established = decide(renamed, [renamed, held(crd("gadgets", "Gadget"))])
    assert names["kind"] == "Widget" and naming["reason"] == "KindConflict"
    assert established["status"] == "True"  # an established CRD stays established


def test_set_condition_keeps_the_transition_time_while_the_status_stays() -> None:
    obj: dict[str, Any] = {}
    set_condition(obj, {"type": "Established", "status": "False", "reason": "Installing"}, "t1")
    set_condition(obj, {"type": "Established", "status": "False", "reason": "NotAccepted"}, "t2")
    assert obj["status"]["conditions"] == [
        {"type": "Established", "status": "False", "lastTransitionTime": "t1", "reason": "NotAccepted"}
    ]
    set_condition(obj, {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}, "t3")
    assert obj["status"]["conditions"][0]["lastTransitionTime"] == "t3"
