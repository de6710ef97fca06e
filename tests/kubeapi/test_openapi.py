"""OpenAPI documents and the kubectl behaviour that depends on them.

kubectl validates what it sends against /openapi/v2, downloaded as gnostic protobuf: kubectl 1.20 (what
Debian ships) for every create/apply, kubectl 1.32 for a `kind: List` file (it validates the items
client-side). `kubectl apply` also computes its strategic-merge patches from the v2 merge keys. The
kubectl tests run with the kubectl on PATH and with every extra binary listed in KEDGE_TEST_KUBECTLS
(os.pathsep-separated; e.g. Debian's 1.20 unpacked with `apt-get download kubernetes-client` and
`dpkg -x`). Everything here is what a real kube-apiserver does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apiserver import ApiServer
from tests.fixtures.wait import eventually
from tests.kubeapi.conftest import Kube, Kubectl, deployment, gadget_crd

PB_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
CORE = "io.k8s.api.core.v1"


def _clients() -> list[str]:
    extra = [p for p in os.environ.get("KEDGE_TEST_KUBECTLS", "").split(os.pathsep) if p]
    return ["kubectl", *extra]


@pytest.fixture(params=_clients())
def kctl(request: pytest.FixtureRequest, apiserver_session: ApiServer, tmp_path: Path) -> Kubectl:
    """kubectl on PATH, or an extra client binary from KEDGE_TEST_KUBECTLS."""
    k = Kubectl(apiserver_session, tmp_path / "kubectl-cache")
    if request.param != "kubectl":
        k.binary = shutil.which(request.param)
        if k.binary is None:
            pytest.fail(f"KEDGE_TEST_KUBECTLS names {request.param}, which is not an executable")
    return k


def _minor(k: Kubectl) -> int:
    out = k("version", "--client", "-o", "json").stdout
    return int(re.sub(r"\D.*", "", json.loads(out)["clientVersion"]["minor"]))


def _strict(k: Kubectl) -> str:
    """kubectl ≥ 1.25 has --validate=strict; older clients only validate=true (client-side)."""
    return "--validate=strict" if _minor(k) >= 25 else "--validate=true"


def _deployment(name: str, replicas: int, env: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return deployment(
        name, replicas, containers=[{"name": "web", "image": "busybox:1.36", "env": env, **extra}]
    )


def _configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _list(*items: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def test_create_and_apply_a_list_without_turning_validation_off(kctl: Kubectl, ns: str) -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    doc = _list(_configmap("lc", a="1"), _deployment("ld", 1, env))
    out = kctl("-n", ns, "create", "-f", "-", input=doc).stdout
    assert "configmap/lc created" in out and "deployment.apps/ld created" in out
    assert kctl.json("-n", ns, "get", "cm", "lc")["data"] == {"a": "1"}
    kctl("-n", ns, "delete", "cm", "lc")
    out = kctl("-n", ns, "apply", "-f", "-", input=doc).stdout
    assert "configmap/lc created" in out
    changed = _list(_configmap("lc", a="2", b="3"), _deployment("ld", 2, [{"name": "B", "value": "9"}]))
    out = kctl("-n", ns, "apply", "-f", "-", input=changed).stdout
    assert "configmap/lc configured" in out and "deployment.apps/ld configured" in out
    assert kctl.json("-n", ns, "get", "cm", "lc")["data"] == {"a": "2", "b": "3"}
    d = kctl.json("-n", ns, "get", "deployment", "ld")
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "B", "value": "9"}]


def test_validation_rejects_unknown_fields_in_list_items(kctl: Kubectl, ns: str) -> None:
    """kubectl validates a List's items client-side against /openapi/v2 and creates none of them."""
    bad_cm = {**_configmap("bad-cm", a="1"), "bogus": 1}
    bad_deploy = _deployment("bad-d", 1, [], imagePolicy="Always")
    res = kctl("-n", ns, "create", _strict(kctl), "-f", "-", input=_list(bad_cm, bad_deploy), check=False)
    assert res.returncode != 0
    assert 'unknown field "bogus"' in res.stderr and 'unknown field "imagePolicy"' in res.stderr
    assert "NotFound" in kctl("-n", ns, "get", "cm", "bad-cm", check=False).stderr
    assert "NotFound" in kctl("-n", ns, "get", "deployment", "bad-d", check=False).stderr
    wrong_type = _list({**_configmap("typed"), "immutable": {"not": "a bool"}})
    res = kctl("-n", ns, "create", "-f", "-", input=wrong_type, check=False)
    assert res.returncode != 0 and "immutable" in res.stderr


def test_strict_validation_rejects_an_unknown_field(kctl: Kubectl, ns: str) -> None:
    """1.32 leaves it to the server (fieldValidation=Strict), 1.20 rejects it client-side."""
    body = json.dumps({**_configmap("strict", a="1"), "bogus": 1})
    res = kctl("-n", ns, "create", _strict(kctl), "-f", "-", input=body, check=False)
    assert res.returncode != 0 and 'unknown field "bogus"' in res.stderr
    assert "NotFound" in kctl("-n", ns, "get", "cm", "strict", check=False).stderr


def test_apply_patches_with_the_published_merge_keys(kctl: Kubectl, ns: str) -> None:
    """Dropping a container and an env entry, and switching the rollout strategy, as apply computes it
    from the merge keys (containers, env by name) and retainKeys (strategy)."""
    first = _deployment("mk", 1, [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    spec = first["spec"]
    spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    spec["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1.36"})
    kctl("-n", ns, "apply", "-f", "-", input=json.dumps(first))
    second = _deployment("mk", 1, [{"name": "B", "value": "3"}])
    second["spec"]["strategy"] = {"type": "Recreate"}
    assert "configured" in kctl("-n", ns, "apply", "-f", "-", input=json.dumps(second)).stdout
    d = kctl.json("-n", ns, "get", "deployment", "mk")
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    containers = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]
    assert containers[0]["env"] == [{"name": "B", "value": "3"}]


# Custom resources


@pytest.fixture
def gadgets(kube: Kube) -> Iterator[str]:
    """A CRD whose schema has a closed spec, an int-or-string, a nullable and a free-form field."""
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    spec_props = {
        "size": {"type": "integer"},
        "port": {"x-kubernetes-int-or-string": True},
        "note": {"type": "string", "nullable": True},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "template": {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    }
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": spec_props}}}
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    r = kube.post(crds, gadget_crd(group, schema))
    assert r.status_code == 201, r.text
    definition = ".".join([*reversed(group.split(".")), "v1", "Gadget"])

    def published() -> bool:
        doc = kube.get("/openapi/v2", headers={"Accept": "application/json"}).json()
        return definition in doc["definitions"]

    eventually(published, 30, what=f"{definition} in /openapi/v2")
    yield group
    kube.delete(f"{crds}/gadgets.{group}")


def _gadget(group: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


def test_custom_resources_in_a_list_validate_against_their_schema(
    kctl: Kubectl, ns: str, gadgets: str
) -> None:
    good = _gadget(gadgets, "g1", size=2, port="http", note=None, extra={"any": {"thing": 1}})
    out = kctl("-n", ns, "create", "-f", "-", input=_list(good)).stdout
    assert f"gadget.{gadgets}/g1 created" in out
    bad = _gadget(gadgets, "g2", size=2, bogus=1)
    res = kctl("-n", ns, "create", _strict(kctl), "-f", "-", input=_list(bad), check=False)
    assert res.returncode != 0 and 'unknown field "bogus"' in res.stderr
    assert "NotFound" in kctl("-n", ns, "get", "gadgets", "g2", check=False).stderr
    # an embedded resource has apiVersion, kind and metadata besides its own fields
    embedded = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "t"}, "data": {}, "stray": 1}
    bad = _gadget(gadgets, "g3", template=embedded)
    res = kctl("-n", ns, "create", _strict(kctl), "-f", "-", input=_list(bad), check=False)
    assert res.returncode != 0 and 'unknown field "stray"' in res.stderr
    assert not re.search(r'unknown field "(apiVersion|kind|metadata)"', res.stderr)
    kctl("-n", ns, "apply", "-f", "-", input=_list(good))  # records last-applied-configuration
    out = kctl("-n", ns, "apply", "-f", "-", input=_list({**good, "spec": {"size": 5}})).stdout
    assert f"gadget.{gadgets}/g1 configured" in out
    assert kctl.json("-n", ns, "get", "gadgets", "g1")["spec"] == {"size": 5}


# The documents themselves


def _v2_json(kube: Kube) -> dict[str, Any]:
    r = kube.get("/openapi/v2", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    return dict(r.json())


def test_v2_definitions_carry_kinds_and_merge_keys(kube: Kube) -> None:
    doc = _v2_json(kube)
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    cm = defs[f"{CORE}.ConfigMap"]
    assert {"group": "", "kind": "ConfigMap", "version": "v1"} in cm["x-kubernetes-group-version-kind"]
    assert {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"} <= set(cm["properties"])
    containers = defs[f"{CORE}.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    env = defs[f"{CORE}.Container"]["properties"]["env"]
    assert (env["x-kubernetes-patch-merge-key"], env["x-kubernetes-patch-strategy"]) == ("name", "merge")
    assert "name" in defs[f"{CORE}.Container"]["required"]
    strategy = defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert "x-kubernetes-patch-merge-key" not in defs[f"{CORE}.PodSpec"]["properties"]["tolerations"]
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "ConfigMap", "version": "v1"}
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert "fieldValidation" in {p.get("name") for p in patch["parameters"]}


def _wire(b: bytes) -> list[tuple[int, Any]]:
    """(field, value) pairs of one protobuf message: varints as ints, length-delimited as bytes."""
    out: list[tuple[int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = n = 0
        while True:
            x = b[i]
            i += 1
            n |= (x & 0x7F) << shift
            shift += 7
            if x < 0x80:
                return n

    while i < len(b):
        key = varint()
        if key & 7 == 0:
            out.append((key >> 3, varint()))
        elif key & 7 == 2:
            n = varint()
            out.append((key >> 3, b[i : i + n]))
            i += n
        else:
            width = 8 if key & 7 == 1 else 4
            out.append((key >> 3, b[i : i + width]))
            i += width
    return out


def test_v2_protobuf_is_the_gnostic_document_with_etag_revalidation(kube: Kube) -> None:
    r = kube.get("/openapi/v2", headers={"Accept": PB_V2})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    fields = _wire(r.content)
    assert (1, b"2.0") in fields  # Document.swagger
    definitions = next(v for n, v in fields if n == 9)  # Document.definitions -> NamedSchema entries
    names = {dict(_wire(entry))[1].decode() for _, entry in _wire(definitions)}
    assert {f"{CORE}.ConfigMap", f"{CORE}.Pod", "io.k8s.api.apps.v1.Deployment"} <= names
    etag = r.headers["ETag"]
    assert re.fullmatch(r'"[0-9A-F]+"', etag)
    again = kube.get("/openapi/v2", headers={"Accept": PB_V2, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # kube-openapi keeps one ETag (of the JSON) for both representations: still current, so 304
    as_json = kube.get("/openapi/v2", headers={"Accept": "application/json", "If-None-Match": etag})
    assert as_json.status_code == 304 and as_json.headers["ETag"] == etag
    assert kube.get("/openapi/v2", headers={"Accept": "application/json"}).headers["ETag"] == etag
    stale = kube.get("/openapi/v2", headers={"Accept": PB_V2, "If-None-Match": '"' + "0" * 128 + '"'})
    assert stale.status_code == 200 and stale.content == r.content
    assert kube.get("/openapi/v2", headers={"Accept": "text/html"}).status_code == 406


def test_v3_hash_urls_are_immutable_and_stale_ones_redirect(kube: Kube) -> None:
    index = kube.get("/openapi/v3").json()
    url = index["paths"]["api/v1"]["serverRelativeURL"]
    path, _, current = url.partition("?hash=")
    r = kube.get(url, headers={"Accept": "application/json"})
    assert r.status_code == 200 and "immutable" in r.headers["Cache-Control"]
    assert r.headers["ETag"] == f'"{current}"'
    wrong = "F" * 128 if current != "F" * 128 else "0" * 128
    stale = kube.get(f"{path}?hash={wrong}", headers={"Accept": "application/json"})
    assert stale.status_code == 301 and stale.headers["Location"].endswith(f"{path}?hash={current}")
