"""`kedge init --stream-tunnel`: what it renders and applies (the DNAT DaemonSet on the control-plane hosts,
the cloud's mode), and what `kedge reset cloud` takes away (the DaemonSet, the tunnel port claims)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml

from runtime.cloud.install.manifests import InstallOptions, render
from runtime.cloud.install.reset import delete_cluster_objects
from runtime.cloud.tunnel import ports
from runtime.errors import UsageError
from runtime.kube.apply import apply_objects
from runtime.kube.client import make_client
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import CONFIGMAPS, DAEMONSETS
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudinit import kedge, kubectl, run_ok


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def cloud_toml(objs: list[dict[str, Any]]) -> dict[str, Any]:
    cm = next(o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"] == "kedge-cloud")
    return tomllib.loads(cm["data"]["cloud.toml"])


def test_dnat_renders_the_control_plane_daemonset_and_the_clouds_mode() -> None:
    objs = render(InstallOptions(stream_tunnel="dnat", namespace="edge-sys"))
    ds = by_kind(objs, "DaemonSet")
    assert [d["metadata"]["name"] for d in ds] == ["kedge-tunnel-dnat"]
    pod = ds[0]["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    assert {t["key"] for t in pod["tolerations"]} == {
        "node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"
    }  # fmt: skip
    box = pod["containers"][0]
    assert box["securityContext"]["privileged"] is True
    assert box["args"] == [
        "cloud",
        "tunnel-dnat",
        "--namespace",
        "edge-sys",
        "--iptables",
        "chroot /host iptables",
    ]
    role = next(o for o in by_kind(objs, "Role") if o["metadata"]["name"] == "kedge-tunnel-dnat")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["tunnelport"],
                              "verbs": ["get"]}]  # fmt: skip
    assert cloud_toml(objs)["kubelet_endpoint"]["mode"] == "dnat"
    # the stream endpoint is a port of the pods (DNAT's target) and of the Service (direct mode's)
    svc = by_kind(objs, "Service")[0]["spec"]["ports"]
    deploy = by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    stream_port = cloud_toml(objs).get("stream", {}).get("port", 10003)
    assert {"name": "stream", "port": stream_port, "targetPort": "stream", "protocol": "TCP"} in svc
    assert {"name": "stream", "containerPort": stream_port, "protocol": "TCP"} in deploy["ports"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in deploy["env"]
    # the default installs no DaemonSet and leaves the edges' endpoints alone
    plain = render(InstallOptions())
    assert not by_kind(plain, "DaemonSet") and cloud_toml(plain)["kubelet_endpoint"]["mode"] == "none"
    assert not by_kind(render(InstallOptions(mode="host", stream_tunnel="direct")), "DaemonSet")
    assert by_kind(render(InstallOptions(mode="host", stream_tunnel="dnat")), "DaemonSet")
    with pytest.raises(UsageError, match="none, direct, dnat"):
        render(InstallOptions(stream_tunnel="iptables"))


def test_init_dry_run_with_dnat_is_accepted_by_kubectl_and_the_api_server(apiserver: ApiServer) -> None:
    out = run_ok(["init", "--dry-run", "-o", "yaml", "--stream-tunnel", "dnat"]).stdout
    assert "kind: DaemonSet" in out
    client_side = kubectl(apiserver.kubeconfig, "apply", "--dry-run=client", "-f", "-", stdin=out)
    assert "daemonset.apps/kedge-tunnel-dnat created (dry run)" in client_side
    kubectl(apiserver.kubeconfig, "create", "namespace", "kubeedge", check=False)
    server_side = kubectl(apiserver.kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=out)
    assert "daemonset.apps/kedge-tunnel-dnat created (server dry run)" in server_side
    refused = kedge("init", "--dry-run", "--stream-tunnel", "bogus")
    assert refused.returncode != 0 and "--stream-tunnel bogus" in refused.stderr
    docs = [d for d in yaml.safe_load_all(run_ok(["init", "--dry-run", "-o", "yaml"]).stdout) if d]
    assert not by_kind(docs, "DaemonSet")


async def test_reset_removes_the_daemonset_and_releases_only_kedges_claims(apiserver: ApiServer) -> None:
    async with make_client(apiserver.kubeconfig) as client:
        await apply_objects(client, render(InstallOptions(stream_tunnel="dnat")))
        await client.get(DAEMONSETS, "kedge-tunnel-dnat", namespace="kubeedge")
        await ports.claim(client, "kubeedge", "10.0.0.1", 40001)
        await ports.claim(client, "kubeedge", "10.0.0.2", 40001)
        # a KubeEdge cloudcore's claim in the same ConfigMap (no stream port recorded) is not kedge's
        rec = await ports.read(client, "kubeedge")
        rec.tunnel["192.0.2.1"] = 10360
        cm = await client.get(CONFIGMAPS, ports.CONFIGMAP, namespace="kubeedge")
        cm["metadata"]["annotations"].update(rec.annotations())
        await client.replace(CONFIGMAPS, cm, namespace="kubeedge")

        dry = await delete_cluster_objects(client, "kubeedge", delete_crds=False, purge=False, dry_run=True)
        assert any(
            i.what.startswith("configmap/tunnelport") and i.outcome == "would release 2 claim(s)" for i in dry
        )
        items = await delete_cluster_objects(
            client, "kubeedge", delete_crds=False, purge=False, dry_run=False
        )
        outcome = {i.what: i.outcome for i in items}
        assert outcome["daemonset.apps/kedge-tunnel-dnat"] == "deleted"
        assert outcome["configmap/tunnelport (tunnel ports)"] == "released 2 claim(s), kept 1"
        assert (await ports.read(client, "kubeedge")).tunnel == {"192.0.2.1": 10360}
        # only kedge's claims: the ConfigMap goes; a second reset finds nothing
        await ports.claim(client, "kubeedge", "10.0.0.3", 40001)
        cm = await client.get(CONFIGMAPS, ports.CONFIGMAP, namespace="kubeedge")
        rec = ports.Record.of(cm)
        del rec.tunnel["192.0.2.1"]
        cm["metadata"]["annotations"].update(rec.annotations())
        await client.replace(CONFIGMAPS, cm, namespace="kubeedge")
        items = await delete_cluster_objects(
            client, "kubeedge", delete_crds=False, purge=False, dry_run=False
        )
        assert {i.what: i.outcome for i in items}["configmap/tunnelport (tunnel ports)"] == "deleted"
        with pytest.raises(KubeNotFound):
            await client.get(CONFIGMAPS, ports.CONFIGMAP, namespace="kubeedge")
        items = await delete_cluster_objects(
            client, "kubeedge", delete_crds=False, purge=False, dry_run=False
        )
        assert {i.what: i.outcome for i in items}["configmap/tunnelport (tunnel ports)"] == "not found"
