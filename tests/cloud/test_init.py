"""`kedge init` / `kedge reset` end to end: real subprocesses, the embedded API server, kubectl."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from runtime.cloud.install import procs
from runtime.paths import Paths
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudinit import kedge, kubectl, run_ok

LOCAL_PORTS = [
    "--set",
    "hub.cert_port=0",
    "--set",
    "hub.websocket_port=0",
    "--set",
    "metrics_address=127.0.0.1:0",
    "--set",
    "stream.port=0",
]
SAMPLES = Path(__file__).parent / "data" / "kubeedge-device-samples.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A kedge root; whatever init left running under it is stopped at teardown."""
    r = tmp_path / "root"
    r.mkdir()
    try:
        yield r
    finally:
        procs.stop_process(r, "cloud")
        procs.stop_process(r, "apiserver")


def _objects(stdout: str) -> dict[str, str]:
    """`kind/name action` lines → {kind/name: action}."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and "/" in parts[0]:
            out[parts[0]] = parts[1]
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_embedded_init_converges_and_reset_stops_everything(root: Path) -> None:
    first = run_ok(["init", "--embedded", "--root", str(root), "--apiserver-port", "0",
                    "--advertise-address", "127.0.0.1", *LOCAL_PORTS])  # fmt: skip
    kubeconfig = root / "etc" / "kedge" / "admin.kubeconfig"
    assert str(kubeconfig) in first.stdout.splitlines()
    join = [line for line in first.stdout.splitlines() if line.startswith("kedge join ")]
    assert len(join) == 1 and "--token " in join[0] and "--server 127.0.0.1:" in join[0]
    bound = procs.cloud_addresses(root)
    assert f"--server 127.0.0.1:{bound['hub'].rpartition(':')[2]} " in join[0]
    assert f"--cert-port {bound['bootstrap'].rpartition(':')[2]} " in join[0]
    created = _objects(first.stdout)
    assert created["customresourcedefinition.apiextensions.k8s.io/devices.devices.kubeedge.io"] == "created"
    assert "deployment.apps/kedge-cloud" not in created  # the cloud runs locally in embedded mode
    # both processes run in the background and the cloud answers /readyz
    cloud_pid, api_pid = procs.running_pid(root, "cloud"), procs.running_pid(root, "apiserver")
    assert cloud_pid and api_pid
    url = procs.cloud_health_url(root)
    assert url is not None
    with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
        assert resp.status == 200
    # kubectl is a real client of what init installed; KubeEdge's sample YAMLs apply unchanged
    crds = kubectl(kubeconfig, "get", "crd", "-o", "name")
    for name in ("devices", "devicemodels", "devicestatuses"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{name}.devices.kubeedge.io" in crds
    kubectl(kubeconfig, "apply", "-f", str(SAMPLES))
    assert "temperature-instance" in kubectl(kubeconfig, "get", "devices.devices.kubeedge.io", "-A")
    # second init converges: every object unchanged, same processes
    second = run_ok(["init", "--embedded", "--root", str(root), "--apiserver-port", "0",
                     "--advertise-address", "127.0.0.1", "--no-token", *LOCAL_PORTS])  # fmt: skip
    again = _objects(second.stdout)
    assert again and set(again.values()) == {"unchanged"}, again
    assert procs.running_pid(root, "cloud") == cloud_pid
    # reset stops both, removes local state; a second reset is a no-op with exit 0
    reset = run_ok(["reset", "--root", str(root), "--force"])
    assert "stopped" in reset.stdout
    assert not _alive(cloud_pid) and not _alive(api_pid)
    assert not Paths.of(root, "cloud").config_file.exists() and not kubeconfig.exists()
    assert kedge("reset", "--root", str(root), "--force").returncode == 0


def test_default_mode_no_wait_against_apiserver(disk_apiserver: ApiServer, tmp_path: Path) -> None:
    apiserver = disk_apiserver
    kc = str(apiserver.kubeconfig)
    root = tmp_path / "r"
    out = run_ok(["init", "--kubeconfig", kc, "--root", str(root), "--no-wait", "--advertise-address",
                  "10.9.8.7", "--advertise-address", "cloud.example.com", "--replicas", "2",
                  "--service-type", "NodePort", "-o", "json"])  # fmt: skip
    summary = json.loads(out.stdout)
    results = {o["object"]: o["result"] for o in summary["objects"]}
    assert results["deployment.apps/kedge-cloud"] == "created"
    assert summary["join"]["command"].startswith("kedge join --server 10.9.8.7:10000 --token ")
    deploy = json.loads(kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "deployment", "kedge-cloud",
                                "-o", "json"))  # fmt: skip
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert deploy["spec"]["replicas"] == 2
    assert container["image"].startswith("kedge/kedge:")
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"]
    svc = json.loads(
        kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "svc", "kedge-cloud", "-o", "json")
    )
    assert svc["spec"]["type"] == "NodePort"
    assert {p["port"] for p in svc["spec"]["ports"]} >= {10000, 10002}
    cm = json.loads(kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "cm", "kedge-cloud", "-o", "json"))
    assert "10.9.8.7" in cm["data"]["cloud.toml"] and "cloud.example.com" in cm["data"]["cloud.toml"]
    fs = json.loads(
        kubectl(apiserver.kubeconfig, "get", "flowschema", "kedge-cloud-node-writes", "-o", "json")
    )
    assert fs["spec"]["priorityLevelConfiguration"]["name"] == "node-high"
    # converge
    again = run_ok(["init", "--kubeconfig", kc, "--root", str(root), "--no-wait", "--no-token",
                    "--advertise-address", "10.9.8.7", "--advertise-address", "cloud.example.com",
                    "--replicas", "2", "--service-type", "NodePort", "-o", "json"])  # fmt: skip
    assert {o["result"] for o in json.loads(again.stdout)["objects"]} == {"unchanged"}
    # reset removes what init created but keeps the CA (no --purge); twice is fine
    run_ok(["reset", "cloud", "--kubeconfig", kc, "--root", str(root), "--force"])
    gone = kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "deployment", "kedge-cloud", check=False)
    assert gone == ""
    assert kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "secret", "kedge-ca", "-o", "name").strip()
    assert "customresourcedefinition" in kubectl(apiserver.kubeconfig, "get", "crd", "-o", "name")
    run_ok(["reset", "cloud", "--kubeconfig", kc, "--root", str(root), "--force"])
    run_ok(["reset", "cloud", "--kubeconfig", kc, "--root", str(root), "--force", "--delete-crds", "--purge"])
    assert "kubeedge.io" not in kubectl(apiserver.kubeconfig, "get", "crd", "-o", "name")


def test_dry_run_yaml_is_accepted_by_kubectl(apiserver: ApiServer) -> None:
    out = run_ok(["init", "--dry-run", "-o", "yaml", "--advertise-address", "10.0.0.1"])
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs[0]["kind"] == "Namespace" and docs[-1]["kind"] == "Service"
    assert (
        kubectl(apiserver.kubeconfig, "get", "ns", "kubeedge", check=False) == ""
    )  # dry run changed nothing
    # a server-side dry run needs the namespace to exist, as on any cluster
    kubectl(
        apiserver.kubeconfig,
        "apply",
        "-f",
        "-",
        stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeedge}\n",
    )
    checked = kubectl(apiserver.kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=out.stdout)
    assert "deployment.apps/kedge-cloud created (server dry run)" in checked
    applied = kubectl(apiserver.kubeconfig, "apply", "-f", "-", stdin=out.stdout)
    assert "deployment.apps/kedge-cloud created" in applied
    assert "customresourcedefinition.apiextensions.k8s.io/devices.devices.kubeedge.io created" in applied


def test_concurrent_inits_end_with_one_ca(apiserver: ApiServer, tmp_path: Path) -> None:
    kc = str(apiserver.kubeconfig)

    def one(i: int) -> subprocess.CompletedProcess[str]:
        return kedge("init", "--kubeconfig", kc, "--root", str(tmp_path / f"r{i}"), "--no-wait", "--no-token",
                     "-o", "json")  # fmt: skip

    with ThreadPoolExecutor(3) as pool:
        procs = list(pool.map(one, range(3)))
    for p in procs:
        assert p.returncode == 0, p.stderr
    hashes = {json.loads(p.stdout)["caHash"] for p in procs}
    assert len(hashes) == 1
    secrets = kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "secrets", "-o", "name")
    assert secrets.count("secret/kedge-ca\n") == 1


def test_preflight_names_the_failed_check(apiserver: ApiServer, tmp_path: Path) -> None:
    kc = str(apiserver.kubeconfig)
    bad = kedge(
        "init", "--kubeconfig", kc, "--root", str(tmp_path), "--no-wait", "--advertise-address", "not_valid!"
    )
    assert bad.returncode == 3, bad.stderr
    assert "advertise-address" in bad.stderr and "not_valid!" in bad.stderr
    assert kubectl(apiserver.kubeconfig, "get", "ns", "kubeedge", check=False) == ""  # nothing applied
    ignore = ["--ignore-preflight-errors", "advertise-address"]
    ok = kedge("init", "--kubeconfig", kc, "--root", str(tmp_path), "--no-wait", "--no-token",
               "--advertise-address", "not_valid!", *ignore)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "(ignored)" in ok.stderr


def test_reset_needs_force_off_a_tty(apiserver: ApiServer, tmp_path: Path) -> None:
    run_ok(
        [
            "init",
            "--kubeconfig",
            str(apiserver.kubeconfig),
            "--root",
            str(tmp_path),
            "--no-wait",
            "--no-token",
        ]
    )
    refused = kedge("reset", "--root", str(tmp_path), stdin="")
    assert refused.returncode == 2 and "--force" in refused.stderr
    dry = run_ok(["reset", "--root", str(tmp_path), "--dry-run"])
    assert "would delete" in dry.stdout
    assert kubectl(apiserver.kubeconfig, "-n", "kubeedge", "get", "deployment", "kedge-cloud", "-o", "name")


def test_host_mode_starts_a_ready_local_cloud(apiserver: ApiServer, root: Path) -> None:
    out = run_ok(["init", "--host", "--kubeconfig", str(apiserver.kubeconfig), "--root", str(root),
                  "--no-token", *LOCAL_PORTS])  # fmt: skip
    assert "starting the cloud" in out.stderr
    url = procs.cloud_health_url(root)
    assert url is not None
    with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
        assert resp.status == 200
    pid = procs.running_pid(root, "cloud")
    assert pid is not None
    run_ok(["reset", "--root", str(root), "--force"])
    assert not _alive(pid)


DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-proxy, namespace: kube-system}
spec:
  selector: {matchLabels: {app: kube-proxy}}
  template:
    metadata: {labels: {app: kube-proxy}}
    spec:
      containers: [{name: proxy, image: registry.k8s.io/kube-proxy:v1.32.0}]
"""


def test_edge_daemonsets_warned_and_patched(apiserver: ApiServer, tmp_path: Path) -> None:
    kc = str(apiserver.kubeconfig)
    kubectl(apiserver.kubeconfig, "apply", "-f", "-", stdin=DAEMONSET)
    warned = run_ok(["init", "--kubeconfig", kc, "--root", str(tmp_path), "--no-wait", "--no-token"])
    assert "[warn] edge-daemonsets" in warned.stderr and "kube-system/kube-proxy" in warned.stderr
    patched = run_ok(["init", "--kubeconfig", kc, "--root", str(tmp_path), "--no-wait", "--no-token",
                      "--patch-daemonsets"])  # fmt: skip
    assert "patched 1 DaemonSet" in patched.stderr
    ds = json.loads(
        kubectl(apiserver.kubeconfig, "-n", "kube-system", "get", "ds", "kube-proxy", "-o", "json")
    )
    terms = ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]  # fmt: skip
    assert {"key": "node-role.kubernetes.io/edge", "operator": "DoesNotExist"} in terms[0]["matchExpressions"]
    again = run_ok(["init", "--kubeconfig", kc, "--root", str(tmp_path), "--no-wait", "--no-token"])
    assert "[ok] edge-daemonsets" in again.stderr
