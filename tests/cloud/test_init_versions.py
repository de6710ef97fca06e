"""`kedge init` / `kedge reset cloud` on Kubernetes 1.28 (issue 24, findings 8 and 10), against the
recorded 1.28.7 discovery (tests/fixtures/kubediscovery.py): FlowSchema is flowcontrol v1beta3
there, v1 only from 1.29."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from runtime.cloud.install import existing, preflight, reset
from runtime.cloud.install.manifests import InstallOptions, render
from runtime.cloud.install.versions import for_server
from runtime.errors import PreflightFailed
from runtime.kube.apply import apply_objects
from runtime.kube.client import make_client
from runtime.kube.errors import KubeNotFound
from tests.fixtures.kubediscovery import recorded_kube
from tests.fixtures.procs import KEDGE

FS = "flowschema.flowcontrol.apiserver.k8s.io/kedge-cloud-node-writes"
FS_V1BETA3 = "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas/kedge-cloud-node-writes"


def _flowschema(objs: list[dict]) -> dict:  # type: ignore[type-arg]
    return next(o for o in objs if o["kind"] == "FlowSchema")


def test_render_picks_the_served_flowcontrol_version() -> None:
    newest = render(InstallOptions())
    assert _flowschema(newest)["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1"
    both = {"flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3"}
    assert _flowschema(for_server(newest, both)[0])["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1"
    only_beta = {"flowcontrol.apiserver.k8s.io/v1beta3", "flowcontrol.apiserver.k8s.io/v1beta2"}
    assert (
        _flowschema(for_server(newest, only_beta)[0])["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1beta3"
    )
    assert _flowschema(newest)["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1"  # not changed in place


async def test_preflight_on_1_28_renders_v1beta3_and_checks_every_version(tmp_path: Path) -> None:
    async with recorded_kube(tmp_path) as kube, make_client(kube.kubeconfig) as client:
        pf = preflight.Preflight()
        await preflight.check_api(pf, client)
        assert pf.served == kube.served and "flowcontrol.apiserver.k8s.io/v1" not in pf.served
        objs = await existing.check_cluster(pf, client, "kubeedge", render(InstallOptions()))
    assert _flowschema(objs)["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1beta3"
    levels = {r.name: (r.level, r.message) for r in pf.results}
    assert levels["api-version"][0] == "ok" and "v1.28.7" in levels["api-version"][1]
    assert levels["manifest-versions"] == ("ok", "the server serves every manifest's apiVersion")
    assert levels["existing-install"] == ("ok", "fresh installation")
    pf.enforce([])


async def test_preflight_names_the_object_and_releases_when_no_version_is_served(tmp_path: Path) -> None:
    """A server serving no flowcontrol version kedge can write (as 1.25 and older: v1beta2 only)."""
    drop = {"flowcontrol.apiserver.k8s.io/v1beta3"}
    async with recorded_kube(tmp_path, drop_versions=drop) as kube, make_client(kube.kubeconfig) as client:
        pf = preflight.Preflight()
        await preflight.check_api(pf, client)
        await existing.check_cluster(pf, client, "kubeedge", render(InstallOptions()))
    with pytest.raises(PreflightFailed) as exc:
        pf.enforce([])
    assert exc.value.failed == ["manifest-versions"]
    text = str(exc.value)
    assert FS in text
    assert "flowcontrol.apiserver.k8s.io/v1 (Kubernetes 1.29 and newer)" in text
    assert "flowcontrol.apiserver.k8s.io/v1beta3 (Kubernetes 1.26 to 1.31)" in text
    assert "kedge supports Kubernetes 1.28 or newer" in text


async def test_checks_the_user_may_not_read_are_warnings_saying_so(tmp_path: Path) -> None:
    """Preflight's permissions check asks about creating; listing Services cluster-wide may be denied."""
    async with (
        recorded_kube(tmp_path, forbidden={"/api/v1/services"}) as kube,
        make_client(kube.kubeconfig) as client,
    ):
        pf = preflight.Preflight()
        await preflight.check_api(pf, client)
        await existing.check_cluster(pf, client, "kubeedge", render(InstallOptions()))
    [cloudcore] = [r for r in pf.results if r.name == "cloudcore"]
    assert cloudcore.level == "warning" and cloudcore.message.startswith("not checked: ")
    assert "/api/v1/services is forbidden" in cloudcore.message
    pf.enforce([])


async def test_apply_error_names_the_object_and_api_version(tmp_path: Path) -> None:
    """What init on 1.28.7 said before: "the server could not find the requested resource", no object."""
    fs = _flowschema(render(InstallOptions()))
    async with recorded_kube(tmp_path) as kube, make_client(kube.kubeconfig) as client:
        with pytest.raises(KubeNotFound) as exc:
            await apply_objects(client, [fs])
    assert str(exc.value).startswith(
        "applying FlowSchema kedge-cloud-node-writes (flowcontrol.apiserver.k8s.io/v1): "
    )
    assert "the server could not find the requested resource" in str(exc.value)
    assert exc.value.hint and "flowcontrol.apiserver.k8s.io/v1" in exc.value.hint


async def test_reset_deletes_the_flowschema_through_the_served_version(tmp_path: Path) -> None:
    async with recorded_kube(tmp_path) as kube, make_client(kube.kubeconfig) as client:
        fs = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
              "metadata": {"name": "kedge-cloud-node-writes"}}  # fmt: skip
        kube.objects[FS_V1BETA3] = fs
        items = await reset.delete_cluster_objects(
            client, "kubeedge", delete_crds=False, purge=False, dry_run=False
        )
    assert {i.what: i.outcome for i in items}[FS] == "deleted"
    assert ("DELETE", FS_V1BETA3) in kube.requests
    assert not [p for m, p in kube.requests if m == "DELETE" and "/flowcontrol.apiserver.k8s.io/v1/" in p]


async def test_dry_run_renders_for_the_kubeconfigs_server(tmp_path: Path) -> None:
    async with recorded_kube(tmp_path) as kube:
        proc = await asyncio.create_subprocess_exec(
            *KEDGE, "init", "--dry-run", "-o", "yaml", "--kubeconfig", str(kube.kubeconfig),
            "--root", str(tmp_path / "root"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert _flowschema(docs)["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1beta3"
    assert all(m == "GET" for m, _ in kube.requests)  # a dry run only reads discovery


def test_product_code_never_reaches_the_recorded_peer() -> None:
    import kubeedge_cli
    import runtime

    for root in (Path(runtime.__file__).parent, Path(kubeedge_cli.__file__).parent):
        for path in root.rglob("*.py"):
            assert "kubediscovery" not in path.read_text(), path
