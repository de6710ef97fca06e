"""Pure parts of init: template rendering, preflight decisions, DaemonSet patches; plus two cheap
failure paths through the real CLI (busy port, readiness timeout naming the object)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from runtime.cloud.install import preflight as pre
from runtime.cloud.install.manifests import InstallOptions, render, substitute, to_yaml
from runtime.cloud.install.versions import ref
from runtime.errors import KedgeError, PreflightFailed, UsageError
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudinit import kedge


def test_render_cluster_and_host_sets() -> None:
    cluster = render(
        InstallOptions(advertise_addresses=["10.0.0.1"], replicas=3, service_type="LoadBalancer")
    )
    kinds = [o["kind"] for o in cluster]
    assert kinds[0] == "Namespace" and {"Deployment", "Service", "ConfigMap", "FlowSchema"} <= set(kinds)
    deploy = next(o for o in cluster if o["kind"] == "Deployment")
    assert deploy["spec"]["replicas"] == 3
    svc = next(o for o in cluster if o["kind"] == "Service")
    assert svc["spec"]["type"] == "LoadBalancer"
    host = render(InstallOptions(mode="host"))
    assert not {"Deployment", "Service", "ConfigMap"} & {o["kind"] for o in host}
    assert ref(deploy) == "deployment.apps/kedge-cloud" and ref(cluster[0]) == "namespace/kubeedge"
    assert to_yaml(cluster).count("\n---\n") == len(cluster) - 1


def test_render_refuses_bad_values_and_unknown_placeholders() -> None:
    with pytest.raises(UsageError, match="ClusterIP, NodePort, LoadBalancer"):
        render(InstallOptions(service_type="ExternalName"))
    with pytest.raises(UsageError, match="at least 1"):
        render(InstallOptions(replicas=0))
    with pytest.raises(KedgeError, match="unknown value"):
        substitute("a: {{ nope }}", {}, "x.yaml")


def test_address_validation() -> None:
    for ok in ("10.0.0.1", "::1", "cloud.example.com", "localhost", "a-b.c"):
        assert pre.valid_address(ok), ok
    for bad in ("not_valid!", "-lead.example", "a..b", ""):
        assert not pre.valid_address(bad), bad


def test_enforce_ignores_by_name_or_all() -> None:
    pf = pre.Preflight()
    pf.add("ports", "error", "busy")
    pf.add("advertise-address", "error", "bad")
    with pytest.raises(PreflightFailed) as exc:
        pf.enforce(["ports"])
    assert exc.value.failed == ["advertise-address"]
    assert "ignore-preflight-errors=advertise-address" in (exc.value.hint or "")
    pf.enforce(["all"])
    with pytest.raises(KedgeError, match="unknown check"):
        pre.Preflight().enforce(["no-such-check"])


def test_daemonset_edge_exclusion() -> None:
    plain: dict[str, Any] = {"spec": {"template": {"spec": {"containers": []}}}}
    assert not pre.excludes_edge(plain)
    patch = pre.edge_exclusion_patch(plain)
    patched = {"spec": {"template": {"spec": patch["spec"]["template"]["spec"]}}}
    assert pre.excludes_edge(patched)
    # an existing term keeps its expressions and gains ours (terms are ORed: each needs it)
    two = {"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]},
            {"matchExpressions": [{"key": "x", "operator": "Exists"}]}]}}}}}}}  # fmt: skip
    terms = pre.edge_exclusion_patch(two)["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]  # fmt: skip
    assert all({"key": pre.EDGE_LABEL, "operator": "DoesNotExist"} in t["matchExpressions"] for t in terms)
    assert terms[0]["matchExpressions"][0]["key"] == "kubernetes.io/os"


def test_embedded_init_refuses_a_busy_apiserver_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = kedge("init", "--embedded", "--root", str(tmp_path), "--apiserver-port", str(port))
    assert proc.returncode == 3, proc.stderr
    assert "[ports]" in proc.stderr and f"127.0.0.1:{port}" in proc.stderr
    assert not (tmp_path / "run" / "kedge" / "apiserver.pid").exists()


def test_in_cluster_wait_times_out_naming_the_deployment(apiserver: ApiServer, tmp_path: Path) -> None:
    """The embedded API server has no kubelet: the Deployment never becomes available."""
    proc = kedge("init", "--kubeconfig", str(apiserver.kubeconfig), "--root", str(tmp_path),
                 "--timeout", "2s", "--no-token")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "deployment.apps/kedge-cloud" in proc.stderr and "available replicas" in proc.stderr
    assert "kubectl -n kubeedge describe deployment kedge-cloud" in proc.stderr


def test_systemd_unit_text() -> None:
    from runtime.cloud.install import systemd

    text = systemd.unit_text(Path("/etc/kedge/admin.kubeconfig"), ["/usr/local/bin/kedge"])
    assert (
        "ExecStart=/usr/local/bin/kedge cloud run --root / --kubeconfig /etc/kedge/admin.kubeconfig" in text
    )
    assert "Restart=always" in text and "LimitNOFILE=" in text and "WantedBy=multi-user.target" in text
    assert not systemd.available(Path("/tmp"))  # never for a test root


def test_init_and_reset_exclude_each_other_per_root(tmp_path: Path) -> None:
    from runtime.cloud.install.procs import exclusive

    with exclusive(tmp_path, "init"):
        busy = kedge("reset", "cloud", "--root", str(tmp_path), "--force", "--kubeconfig", "/nonexistent")
    assert busy.returncode == 1 and "another kedge init/reset" in busy.stderr
    with exclusive(tmp_path, "init"):
        busy = kedge("init", "--embedded", "--root", str(tmp_path), "--apiserver-port", "0")
    assert busy.returncode == 1 and "another kedge init/reset" in busy.stderr
    with exclusive(tmp_path, "again"):  # released when the holder is done
        pass


def test_reset_without_role_refuses_when_cloud_and_edge_share_the_root(tmp_path: Path) -> None:
    for role in ("cloud", "edge"):
        (tmp_path / "etc" / "kedge").mkdir(parents=True, exist_ok=True)
        (tmp_path / "etc" / "kedge" / f"{role}.toml").write_text("")
    proc = kedge("reset", "--root", str(tmp_path), "--force")
    assert proc.returncode == 2 and "both cloud and edge" in proc.stderr
    assert (tmp_path / "etc" / "kedge" / "edge.toml").exists()


def test_token_create_refusals(apiserver: ApiServer) -> None:
    proc = kedge("token", "create", "--kubeconfig", str(apiserver.kubeconfig), "--node", "Bad_Name")
    assert proc.returncode == 2 and "not a valid node name" in proc.stderr
    proc = kedge("token", "create", "--kubeconfig", str(apiserver.kubeconfig))  # no kedge init yet
    assert proc.returncode == 1 and "kedge init" in proc.stderr


def test_cloud_run_without_init_says_what_to_do(apiserver: ApiServer, tmp_path: Path) -> None:
    proc = kedge("cloud", "run", "--kubeconfig", str(apiserver.kubeconfig), "--root", str(tmp_path),
                 "--set", "hub.cert_port=0", "--set", "hub.websocket_port=0", "--set", "stream.port=0",
                 "--set", "metrics_address=127.0.0.1:0", timeout=60)  # fmt: skip
    assert proc.returncode == 1
    assert "namespace kubeedge" in proc.stderr and "kedge init" in proc.stderr


async def test_api_older_than_1_16_is_refused_naming_the_minimum(tmp_path: Path) -> None:
    """A stand-in for a Kubernetes 1.15 API server: /version says 1.15, apiextensions/v1 is absent."""
    from aiohttp import web

    from runtime.kube.client import make_client

    async def version(_: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "15+", "gitVersion": "v1.15.12"})

    async def missing(_: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)

    app = web.Application()
    app.router.add_get("/version", version)
    app.router.add_get("/apis/apiextensions.k8s.io/v1", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kubeconfig = tmp_path / "old.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: old\n"
        f"clusters: [{{name: old, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: old, context: {cluster: old, user: u}}]\n"
    )
    try:
        async with make_client(kubeconfig) as client:
            pf = pre.Preflight()
            await pre.check_api(pf, client)
    finally:
        await runner.cleanup()
    with pytest.raises(PreflightFailed) as exc:
        pf.enforce([])
    assert exc.value.failed == ["api-version"]
    assert "v1.15.12" in str(exc.value) and "Kubernetes 1.28 or newer" in str(exc.value)


def test_in_cluster_cloud_adds_its_service_names_to_the_sans() -> None:
    from prometheus_client import CollectorRegistry

    from runtime.cloud.context import CloudContext
    from runtime.config import CloudConfig

    cfg = CloudConfig()
    cfg.advertise_addresses = ["203.0.113.7"]
    ctx = CloudContext(cfg, None, None, None, None, CollectorRegistry())  # type: ignore[arg-type]
    assert ctx.advertise() == ["203.0.113.7"]
    ctx.in_cluster = True
    assert ctx.advertise() == [
        "203.0.113.7", "kedge-cloud.kubeedge.svc", "kedge-cloud.kubeedge.svc.cluster.local"
    ]  # fmt: skip
