"""The cloud image (issue 14): ./scripts/build-image.sh builds it from the executable without any registry
and `docker save`s it; run as a kubelet runs the Deployment from templates/ — the ServiceAccount's token
and CA at the in-cluster paths, KUBERNETES_SERVICE_HOST/PORT set, read-only root with the Deployment's
writable volumes, its command and args — it is the cloud against the embedded API server, and an edge
joins it."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import tomllib
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import tomli_w

from tests.fixtures import REPO
from tests.fixtures.apiserver import start_apiserver
from tests.fixtures.cloudinit import kubectl
from tests.fixtures.e2e import free_port
from tests.fixtures.procs import KEDGE, executable, stop
from tests.fixtures.wait import eventually

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def run(cmd: list[str], timeout: float = 180, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
    return done.stdout


def deployment_container(kubeconfig: Path) -> dict[str, Any]:
    deploy = json.loads(
        kubectl(kubeconfig, "-n", "kubeedge", "get", "deployment", "kedge-cloud", "-o", "json")
    )
    spec = deploy["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "kedge-cloud"
    container: dict[str, Any] = spec["containers"][0]
    return container


@pytest.mark.docker
@pytest.mark.kubectl
def test_the_image_runs_as_the_in_cluster_cloud_and_an_edge_joins(tmp_path: Path) -> None:
    exe = executable()
    tag = f"kedge.test/kedge:{uuid.uuid4().hex[:12]}"
    saved = tmp_path / "image.tar"
    env = {**os.environ, "KEDGE_BIN": str(exe)}
    run(["bash", f"{REPO}/scripts/build-image.sh", tag, str(saved)], timeout=600, env=env)
    name = f"kedge-cloud-{uuid.uuid4().hex[:8]}"
    api = start_apiserver(tmp_path / "api")
    edge_root = tmp_path / "edge"
    try:
        with tarfile.open(saved) as tar:  # docker save's layout: what `docker load` on a cluster node reads
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert manifest[0]["RepoTags"] == [tag]

        # `kedge init` against the cluster: namespace, RBAC, ServiceAccount, ConfigMap, Deployment
        run([*KEDGE, "init", "--kubeconfig", str(api.kubeconfig), "--image", tag, "--no-wait", "--no-token",
             "--advertise-address", "127.0.0.1", "--root", str(tmp_path / "cloudroot")])  # fmt: skip
        container = deployment_container(api.kubeconfig)
        assert container["image"] == tag

        # what a kubelet gives the pod: the ServiceAccount's token and the cluster CA, the service env
        sa = tmp_path / "sa"
        sa.mkdir()
        (sa / "token").write_text(kubectl(api.kubeconfig, "-n", "kubeedge", "create", "token", "kedge-cloud"))
        (sa / "ca.crt").write_bytes(api.ca_file.read_bytes())
        (sa / "namespace").write_text("kubeedge")
        cm = json.loads(
            kubectl(api.kubeconfig, "-n", "kubeedge", "get", "configmap", "kedge-cloud", "-o", "json")
        )
        cfg = tomllib.loads(cm["data"]["cloud.toml"])
        hub, cert, health = free_port(), free_port(), free_port()
        # the host network stands in for the pod's: ports of this test's own, on loopback
        cfg.setdefault("hub", {}).update(bind="127.0.0.1", websocket_port=hub, cert_port=cert)
        cfg["metrics_address"] = f"127.0.0.1:{health}"
        cfg.setdefault("stream", {}).update(bind="127.0.0.1", port=0)
        (tmp_path / "cloud.toml").write_text(tomli_w.dumps(cfg))
        api_url = urlsplit(api.url)
        ro = [f"{SA_DIR}:ro", "/etc/kedge/cloud.toml:ro"]
        run([
            "docker", "run", "-d", "--name", name, "--label", "kedge.test=cloud-image",
            "--network", "host", "--read-only", "--user", "0:0",
            "--tmpfs", "/var/lib/kedge", "--tmpfs", "/run/kedge", "--tmpfs", "/tmp",
            "-v", f"{sa}:{ro[0]}", "-v", f"{tmp_path / 'cloud.toml'}:{ro[1]}",
            "-e", f"KUBERNETES_SERVICE_HOST={api_url.hostname}",
            "-e", f"KUBERNETES_SERVICE_PORT={api_url.port}",
            "--entrypoint", container["command"][0], tag, *container["args"],
        ])  # fmt: skip

        def ready() -> bool:
            done = subprocess.run(
                ["docker", "exec", name, "wget", "-q", "-O", "-", f"http://127.0.0.1:{health}/readyz"],
                capture_output=True, timeout=30, check=False,
            )  # fmt: skip
            return done.returncode == 0

        eventually(ready, 90, "the cloud in the image to answer /readyz")
        token = json.loads(
            run([*KEDGE, "token", "create", "--kubeconfig", str(api.kubeconfig), "-o", "json"])
        )
        run([
            *KEDGE, "join", "--root", str(edge_root), "--token", token["token"],
            "--server", f"127.0.0.1:{hub}", "--cert-port", str(cert),
            "--node-name", "image-edge", "--mqtt", "off", "--ready-timeout", "90",
        ])  # fmt: skip

        def node_ready() -> bool:
            node = json.loads(
                kubectl(api.kubeconfig, "get", "node", "image-edge", "-o", "json", check=False) or "{}"
            )
            conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
            return conds.get("Ready") == "True"

        eventually(
            node_ready, 60, "node image-edge Ready in the cluster"
        )  # only the image's cloud serves the hub
    finally:
        subprocess.run(
            [*KEDGE, "reset", "edge", "--root", str(edge_root), "--force"], capture_output=True, timeout=120
        )
        out = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=30)
        print(out.stdout[-4000:], out.stderr[-4000:])
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, timeout=60)
        if api.proc is not None:
            stop(api.proc)


pytestmark = pytest.mark.timeout(900)
