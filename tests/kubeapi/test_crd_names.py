"""A CRD's names and conditions, as kube-apiserver's in-server naming and establishing controllers set
them: the create is answered with empty accepted names and no conditions; NamesAccepted, then
Established follow in their own writes; two CRDs of a group claiming one kind: the later one gets
NamesAccepted False (KindConflict) and is not served until the first one is gone.

Run against both storages of the embedded server (`--in-memory`, the tests' usual one, and sqlite, what
`kedge apiserver --no-controllers` uses), neither with controllers: the steps run inside the server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.apiserver import _external, start_apiserver
from tests.fixtures.procs import stop
from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, custom_resource_definition

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
SCHEMA = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


@pytest.fixture(scope="module", params=["in-memory", "sqlite"])
def kube(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    external = _external()
    if external is not None:
        if request.param != "in-memory":
            pytest.skip("KEDGE_TEST_KUBECONFIG names the server: run once")
        k = Kube(external)
        yield k
        k.close()
        return
    server = start_apiserver(tmp_path_factory.mktemp("crd-names"), in_memory=request.param == "in-memory")
    k = Kube(server)
    try:
        yield k
    finally:
        k.close()
        assert server.proc is not None
        stop(server.proc)


def crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    body = custom_resource_definition(
        group, kind, [{"name": "v1", "served": True, "storage": True, "schema": SCHEMA}]
    )
    body["metadata"]["name"] = f"{plural}.{group}"
    body["spec"]["names"]["plural"] = plural
    return body


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    conds = (obj.get("status") or {}).get("conditions") or []
    return {c["type"]: (c["status"], c.get("reason", ""), c.get("message", "")) for c in conds}


def current(kube: Kube, name: str) -> dict[str, Any]:
    r = kube.get(f"{CRDS}/{name}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_condition(kube: Kube, name: str, kind: str, status: str) -> None:
    def holds() -> bool:
        return conditions(current(kube, name)).get(kind, ("",))[0] == status

    eventually(holds, 30, what=f"CRD {name}: {kind}={status}")


def test_create_answers_without_names_then_names_and_established_follow(kube: Kube) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    r = kube.post(CRDS, crd(group, "Widget", "widgets"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == {
        "conditions": None,
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": ["v1"],
    }
    name = f"widgets.{group}"
    params = {
        "watch": "1",
        "resourceVersion": created["metadata"]["resourceVersion"],
        "fieldSelector": f"metadata.name={name}",
        "timeoutSeconds": "20",
    }
    seen: list[dict[str, Any]] = []
    with kube.http.stream("GET", CRDS, params=params) as watch:
        for line in watch.iter_lines():
            if line.strip():
                seen.append(json.loads(line))
                if conditions(seen[-1]["object"]).get("Established", ("",))[0] == "True":
                    break
    assert [e["type"] for e in seen] == ["MODIFIED"] * len(seen)
    steps = [conditions(e["object"]) for e in seen]
    named = next(s for s in steps if "NamesAccepted" in s)
    assert named["NamesAccepted"] == ("True", "NoConflicts", "no conflicts found")
    assert named["Established"] == ("False", "Installing", "the initial names have been accepted")
    assert steps[-1]["Established"] == (
        "True",
        "InitialNamesAccepted",
        "the initial names have been accepted",
    )
    final = seen[-1]["object"]
    assert final["status"]["acceptedNames"] == {
        "plural": "widgets",
        "singular": "widget",
        "kind": "Widget",
        "listKind": "WidgetList",
    }
    assert kube.get(f"/apis/{group}/v1/widgets").status_code == 200
    kube.delete(f"{CRDS}/{name}")


def test_a_kind_claimed_twice_is_refused_until_the_first_claim_goes(kube: Kube) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    assert kube.post(CRDS, crd(group, "Widget", "widgets")).status_code == 201
    first = f"widgets.{group}"
    wait_condition(kube, first, "Established", "True")
    claim = crd(group, "Widget", "gadgets")
    claim["spec"]["names"].update(singular="gadget", listKind="GadgetList")  # only the kind is taken
    assert kube.post(CRDS, claim).status_code == 201
    second = f"gadgets.{group}"

    wait_condition(kube, second, "NamesAccepted", "False")
    late = current(kube, second)
    assert conditions(late) == {
        "NamesAccepted": ("False", "KindConflict", '"Widget" is already in use'),
        "Established": ("False", "NotAccepted", "not all names are accepted"),
    }
    assert late["status"]["acceptedNames"] == {
        "plural": "gadgets",
        "singular": "gadget",
        "kind": "",
        "listKind": "GadgetList",
    }
    assert kube.get(f"/apis/{group}/v1/gadgets").status_code == 404
    listed = [r["name"] for r in kube.get(f"/apis/{group}/v1").json()["resources"]]
    assert "gadgets" not in listed and "widgets" in listed

    assert kube.delete(f"{CRDS}/{first}").status_code == 200

    wait_condition(kube, second, "Established", "True")  # once the first is gone
    assert conditions(current(kube, second))["NamesAccepted"] == ("True", "NoConflicts", "no conflicts found")
    eventually(lambda: kube.get(f"/apis/{group}/v1/gadgets").status_code == 200, 10, what="gadgets served")
    kube.delete(f"{CRDS}/{second}")
