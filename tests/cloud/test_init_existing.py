"""`kedge init` into a cluster that already holds something (issue 24, findings 9 and 12): a
previous init that stopped part-way, KubeEdge's cloudcore, CRDs another installer put there.
Real subprocesses, the embedded API server, kubectl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runtime.cloud.install import existing, preflight
from runtime.cloud.install.manifests import InstallOptions, render
from runtime.kube.client import make_client
from tests.fixtures.apiserver import ApiServer, _external, start_apiserver
from tests.fixtures.cloudinit import kedge, kubectl, run_ok
from tests.fixtures.procs import stop
from tests.fixtures.wait import eventually

NO_WAIT = ["--no-wait", "--no-token"]
DEVICES = "customresourcedefinition.apiextensions.k8s.io/devices.devices.kubeedge.io"


@pytest.fixture
def controlled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The embedded API server with its controllers (a namespace stays Terminating while its
    content has finalizers), or KEDGE_TEST_KUBECONFIG's cluster."""
    ext = _external()
    if ext is not None:
        yield ext
        return
    server = start_apiserver(tmp_path_factory.mktemp("controlled"), "--controllers")
    try:
        yield server
    finally:
        assert server.proc is not None
        stop(server.proc)


def _crd(name: str) -> dict:  # type: ignore[type-arg]
    """kedge's own CRD as rendered, without kedge's label: what another installer would have made."""
    crd = next(o for o in render(InstallOptions()) if o["metadata"]["name"] == name)
    crd["metadata"].pop("labels", None)
    return dict(crd)


def _managers(kc: Path, crd: str) -> set[str]:
    obj = json.loads(kubectl(kc, "get", "crd", crd, "-o", "json", "--show-managed-fields"))
    return {m["manager"] for m in obj["metadata"].get("managedFields") or []}


def _names(kc: Path, *what: str) -> str:
    return kubectl(kc, "get", *what, "-o", "name", "--ignore-not-found").strip()


def _wait_for(kc: Path, *what: str) -> None:
    eventually(lambda: _names(kc, *what), 60, " ".join(what))


def _wait_gone(kc: Path, *what: str) -> None:
    eventually(lambda: not _names(kc, *what), 60, f"{' '.join(what)} gone")


def test_a_failed_init_is_reported_by_object_and_the_next_run_converges(
    controlled: ApiServer, tmp_path: Path
) -> None:
    kc = controlled.kubeconfig
    base = ["init", "--kubeconfig", str(kc), "--root", str(tmp_path), *NO_WAIT]
    # namespace kubeedge is terminating (a finalizer holds it): init's namespaced objects are refused
    kubectl(kc, "create", "namespace", "kubeedge")
    _wait_for(kc, "-n", "kubeedge", "serviceaccount", "default")  # the controllers run
    kubectl(kc, "-n", "kubeedge", "create", "configmap", "hold")
    kubectl(kc, "-n", "kubeedge", "patch", "configmap", "hold", "--type=merge",
            "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')  # fmt: skip
    kubectl(kc, "delete", "namespace", "kubeedge", "--wait=false")
    failed = kedge(*base)
    assert failed.returncode != 0, failed.stdout
    assert "applying ServiceAccount kubeedge/kedge-cloud (v1): " in failed.stderr, failed.stderr
    # what it left behind: the CRDs; then the namespace goes
    assert "devices.devices.kubeedge.io" in kubectl(kc, "get", "crd", "-o", "name")
    kubectl(kc, "-n", "kubeedge", "patch", "configmap", "hold", "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}')  # fmt: skip
    _wait_gone(kc, "namespace", "kubeedge")

    again = run_ok([*base, "-o", "json"])
    assert "[ok] existing-install: a previous init stopped part-way:" in again.stderr, again.stderr
    assert "no CA yet: converging" in again.stderr
    check = next(line for line in again.stderr.splitlines() if "existing-install" in line)
    assert DEVICES in check and "clusterrole" not in check  # the CRDs were applied, RBAC was not
    assert "namespace/kubeedge" not in check  # gone meanwhile: not claimed to exist
    results = {o["object"]: o["result"] for o in json.loads(again.stdout)["objects"]}
    assert results["namespace/kubeedge"] == "created"
    assert results[DEVICES] == "unchanged"
    assert results["clusterrole.rbac.authorization.k8s.io/kedge-cloud"] == "created"
    assert results["deployment.apps/kedge-cloud"] == "created"

    third = run_ok(base)
    assert "[ok] existing-install: kedge already installed in kubeedge: converging" in third.stderr


def test_matching_foreign_crds_are_kept_and_different_ones_refused(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    kc = apiserver.kubeconfig
    base = ["init", "--kubeconfig", str(kc), "--root", str(tmp_path), *NO_WAIT]
    kubectl(kc, "create", "-f", "-", stdin=yaml.safe_dump(_crd("devices.devices.kubeedge.io")))
    out = run_ok([*base, "-o", "json"])
    assert "[ok] crds: kept as they are (installed by someone else, same as kedge's): " \
           "devices.devices.kubeedge.io" in out.stderr, out.stderr  # fmt: skip
    results = {o["object"]: o["result"] for o in json.loads(out.stdout)["objects"]}
    assert results[DEVICES] == "kept"
    assert "kedge" not in _managers(kc, "devices.devices.kubeedge.io")  # not re-applied
    assert "kedge" in _managers(kc, "devicemodels.devices.kubeedge.io")  # kedge's own: applied

    # another installer's DeviceModel CRD that differs (one more schema property): init refuses
    kubectl(kc, "delete", "crd", "devicemodels.devices.kubeedge.io")
    _wait_gone(kc, "crd", "devicemodels.devices.kubeedge.io")
    other = _crd("devicemodels.devices.kubeedge.io")
    changed = next(v for v in other["spec"]["versions"] if v["storage"])
    changed["schema"]["openAPIV3Schema"].setdefault("properties", {})["extra"] = {"type": "string"}
    kubectl(kc, "create", "-f", "-", stdin=yaml.safe_dump(other))
    refused = kedge(*base)
    assert refused.returncode == 3, refused.stderr
    assert "[crds] installed by someone else and different from kedge's: devicemodels.devices.kubeedge.io " \
           f"({changed['name']} schema differs)" in refused.stderr, refused.stderr  # fmt: skip

    # reset --delete-crds removes kedge's CRDs only
    reset = run_ok(["reset", "cloud", "--kubeconfig", str(kc), "--root", str(tmp_path), "--force",
                    "--delete-crds", "-o", "json"])  # fmt: skip
    outcome = {r["object"]: r["result"] for r in json.loads(reset.stdout)}
    assert outcome[DEVICES] == "kept (not installed by kedge)"
    assert (
        outcome["customresourcedefinition.apiextensions.k8s.io/devicestatuses.devices.kubeedge.io"]
        == "deleted"
    )
    crds = kubectl(kc, "get", "crd", "-o", "name")
    assert "devices.devices.kubeedge.io" in crds and "devicemodels.devices.kubeedge.io" in crds


async def test_preflight_notices_a_running_cloudcore(apiserver: ApiServer, tmp_path: Path) -> None:
    kc = apiserver.kubeconfig
    labels = {"k8s-app": "kubeedge", "kubeedge": "cloudcore"}
    container = {"name": "cloudcore", "image": "kubeedge/cloudcore:v1.23.0"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "cloudcore", "namespace": "kubeedge", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }
    meta = {"name": "cloudcore", "namespace": "kubeedge"}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta,
               "spec": {"selector": labels, "ports": [{"name": "cloudhub", "port": 10000}]}}  # fmt: skip
    kubectl(kc, "create", "namespace", "kubeedge")
    kubectl(kc, "create", "-f", "-", stdin=yaml.safe_dump_all([deployment, service]))
    async with make_client(kc) as client:
        pf = preflight.Preflight()
        await existing.check_cloudcore(pf, client, "kubeedge")
    [result] = pf.results
    assert result.level == "error"
    assert result.details == ["deployment kubeedge/cloudcore", "service kubeedge/cloudcore (port 10000)"]
    refused = kedge("init", "--kubeconfig", str(kc), "--root", str(tmp_path), *NO_WAIT)
    assert refused.returncode == 3
    assert (
        "[cloudcore] KubeEdge's cloudcore runs in this cluster: deployment kubeedge/cloudcore"
        in refused.stderr
    )
    assert kubectl(kc, "get", "crd", "-o", "name") == ""  # nothing applied

    # only a Service on the hub port (no cloudcore workload): a warning
    kubectl(kc, "-n", "kubeedge", "delete", "deployment", "cloudcore")
    async with make_client(kc) as client:
        pf = preflight.Preflight()
        await existing.check_cloudcore(pf, client, "kubeedge")
    assert [(r.level, r.details) for r in pf.results] == [
        ("warning", ["service kubeedge/cloudcore (port 10000)"])
    ]
