"""An API server dials the kubelet endpoint kedge's cloud writes: the embedded one here, a real
kube-apiserver when KEDGE_TEST_KUBECONFIG names one (the fixtures then are that cluster).

1. The cloud (direct mode) points the edge node's InternalIP and kubelet port at 127.0.0.1 and a TLS
   listener standing in for the stream endpoint; `kubectl logs` through the API server must reach it
   (kube-apiserver checks no proxyable address for logs and exec, and verifies no kubelet serving
   certificate without --kubelet-certificate-authority; the embedded server does as it does).
2. The whole path with the cloud as a user installs it on an existing cluster: `kedge init --host
   --stream-tunnel direct` on that API server, `kedge join`, a pod on Docker; `kubectl logs` and
   `kubectl exec` (exit code passed back) through the API server. KEDGE_TEST_STREAM_ADDRESS names the
   address a remote API server reaches this machine at (default 127.0.0.1: an API server on this host)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from aiohttp import web

from runtime.cloud.tunnel.endpoint import KubeletEndpoint, KubeletEndpoints
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import NODES, PODS
from runtime.pki import certs, tls
from tests.fixtures import require
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.docker import ensure_busybox_image
from tests.fixtures.e2e import INIT_TIMEOUT, Cloud, Edge, remove_edge, run
from tests.fixtures.e2e import kedge as e2e_kedge
from tests.fixtures.procs import KEDGE
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually


async def test_kubectl_logs_through_the_api_server_reach_the_written_endpoint(
    cloudenv: CloudEnv, tls_certs: TLSCerts
) -> None:
    seen: list[str] = []

    async def kubelet(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(text="hello from the stream endpoint\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", kubelet)
    runner = web.AppRunner(app)
    await runner.setup()
    cert, key = tls_certs.server.der()
    served = tls.server_context(cert, key, certs.cert_der(tls_certs.authority.cert))
    served.verify_mode = ssl.CERT_NONE  # whoever dials: the stand-in checks no client certificate
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=served)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    node, pod = f"tun-api-{uuid.uuid4().hex[:6]}", f"tun-api-{uuid.uuid4().hex[:6]}"
    env = cloudenv
    kubeconfig = os.environ.get("KEDGE_TEST_KUBECONFIG") or str(env.cp.kubeconfig)
    try:
        cloud = await env.cloud(endpoints=KubeletEndpoints(lambda: KubeletEndpoint("127.0.0.1", port)))
        e = await env.edge(node, cloud)
        await env.register(e)
        body = {"metadata": {"name": pod, "namespace": "default"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                         "tolerations": [{"operator": "Exists"}]}}  # fmt: skip
        await env.client.create(PODS, body, namespace="default")
        cmd = ["kubectl", "--kubeconfig", kubeconfig, "logs", "-n", "default", pod, "-c", "c", "--tail", "3"]
        done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello from the stream endpoint\n"
        assert seen == [f"/containerLogs/default/{pod}/c?tailLines=3"]
    finally:
        await runner.cleanup()
        for res, name, ns in ((PODS, pod, "default"), (NODES, node, None)):
            with contextlib.suppress(KubeNotFound):
                await env.client.delete(res, name, namespace=ns, grace_period=0)


@dataclass
class HostCloud(Cloud):
    """`kedge init --host` against the `apiserver` fixture's cluster (a real one with
    KEDGE_TEST_KUBECONFIG), the stream endpoint written into the nodes as `--stream-tunnel direct`.
    KEDGE_TEST_STREAM_ADDRESS: where that API server reaches this machine (default 127.0.0.1)."""

    cluster: Path = Path()

    @property
    def kubeconfig(self) -> Path:
        return self.cluster

    def token(self) -> str:
        out = e2e_kedge("token", "create", "--kubeconfig", str(self.cluster), "-o", "json").stdout
        return str(json.loads(out)["token"])

    def init(self, *extra: str) -> subprocess.CompletedProcess[str]:
        address = os.environ.get("KEDGE_TEST_STREAM_ADDRESS", "127.0.0.1")
        return e2e_kedge(
            "init", "--host", "--root", str(self.root), "--kubeconfig", str(self.cluster),
            "--advertise-address", address, "--stream-tunnel", "direct",
            "--set", f"hub.websocket_port={self.hub_port}", "--set", f"hub.cert_port={self.cert_port}",
            "--set", "metrics_address=127.0.0.1:0", "--set", f"stream.port={self.stream_port}",
            "--set", f"stream.bind={address}", "--timeout", "90s", *extra, timeout=INIT_TIMEOUT,
        )  # fmt: skip


@pytest.mark.docker
@pytest.mark.kubectl
def test_kubectl_logs_and_exec_through_the_api_server_to_a_kedge_edge(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    """host mode on the cluster of `apiserver` (embedded here; the real one with KEDGE_TEST_KUBECONFIG):
    kubectl → that API server → the node's kubelet endpoint the cloud wrote → the edge → Docker."""
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    ensure_busybox_image(client)
    cloud = HostCloud(tmp_path / "cloud", cluster=apiserver.kubeconfig)
    edge = Edge(tmp_path / "edge", f"tun-{uuid.uuid4().hex[:6]}", cloud, client)
    pod = f"tun-{uuid.uuid4().hex[:6]}"
    try:
        cloud.init()
        edge.join(cloud.token())
        script = "echo line-1; echo line-2; sleep 3600"
        box = {"name": "c", "image": "kedge.local/busybox:1", "command": ["sh", "-c", script]}
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": "default"},
                "spec": {"nodeName": edge.node, "terminationGracePeriodSeconds": 1,
                         "automountServiceAccountToken": False,  # a bare API server has no token controller
                         "tolerations": [{"operator": "Exists"}], "containers": [box]}}  # fmt: skip
        cloud.kubectl("apply", "-f", "-", stdin=json.dumps(body))

        def running() -> dict[str, object] | None:
            got = cloud.get("pod", pod, "-n", "default")
            return None if got["status"].get("phase") != "Running" else got

        def status() -> str:
            return json.dumps(cloud.get("pod", pod, "-n", "default").get("status"))[:600]

        try:
            eventually(running, 90, f"pod {pod} running on {edge.node}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; pod status: {status()}") from exc
        node = cloud.get("node", edge.node)
        internal = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        assert (internal, node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]) == (
            os.environ.get("KEDGE_TEST_STREAM_ADDRESS", "127.0.0.1"),
            cloud.stream_port,
        )
        logs = eventually(lambda: cloud.kubectl("logs", "-n", "default", pod, check=False) or None, 30,
                          "kubectl logs answers")  # fmt: skip
        assert logs == "line-1\nline-2\n"
        done = run(["kubectl", "--kubeconfig", str(cloud.kubeconfig), "exec", "-n", "default", pod, "--",
                    "sh", "-c", "echo out; exit 3"], check=False, timeout=60)  # fmt: skip
        assert done.returncode == 3 and done.stdout == "out\n", done.stderr
    finally:
        run(["kubectl", "--kubeconfig", str(cloud.kubeconfig), "delete", "pod", "-n", "default", pod,
             "--ignore-not-found", "--wait=false"], check=False)  # fmt: skip
        remove_edge(edge)
        run([*KEDGE, "reset", "cloud", "--root", str(cloud.root), "--force"], check=False, timeout=120)
        run(["kubectl", "--kubeconfig", str(cloud.kubeconfig), "delete", "node", edge.node,
             "--ignore-not-found"], check=False)  # fmt: skip
