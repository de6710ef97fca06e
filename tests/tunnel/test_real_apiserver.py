"""A real kube-apiserver dials the kubelet endpoint kedge's cloud writes (KEDGE_TEST_KUBECONFIG only).

The cloud (direct mode) points the edge node's InternalIP and kubelet port at 127.0.0.1 and a TLS
listener standing in for the stream endpoint; `kubectl logs` through the real API server must reach it
(kube-apiserver checks no proxyable address for logs and exec, and verifies no kubelet serving
certificate without --kubelet-certificate-authority). The embedded API server's side of this path is
tested with the stream endpoint itself (issue 19's streams work)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest
from aiohttp import web

from runtime.cloud.tunnel.endpoint import KubeletEndpoint, KubeletEndpoints
from runtime.kube.resources import NODES, PODS
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.tlscerts import TLSCerts

KUBECONFIG = os.environ.get("KEDGE_TEST_KUBECONFIG", "")
pytestmark = pytest.mark.skipif(
    not KUBECONFIG,
    reason="KEDGE_TEST_KUBECONFIG not set: no real kube-apiserver to dial the kubelet endpoint",
)


async def test_kubectl_logs_through_a_real_api_server_reach_the_written_endpoint(
    cloudenv: CloudEnv, tls_certs: TLSCerts
) -> None:
    seen: list[str] = []

    async def kubelet(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="hello from the stream endpoint\n")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", kubelet)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls_certs.server_context())
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    node, pod = f"tun-real-{uuid.uuid4().hex[:6]}", f"tun-real-{uuid.uuid4().hex[:6]}"
    env = cloudenv
    try:
        cloud = await env.cloud(endpoints=KubeletEndpoints(lambda: KubeletEndpoint("127.0.0.1", port)))
        e = await env.edge(node, cloud)
        await env.register(e)
        body = {"metadata": {"name": pod, "namespace": "default"},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                         "tolerations": [{"operator": "Exists"}]}}  # fmt: skip
        await env.client.create(PODS, body, namespace="default")
        cmd = ["kubectl", "--kubeconfig", KUBECONFIG, "logs", "-n", "default", pod, "-c", "c"]
        done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "hello from the stream endpoint\n"
        assert seen == [f"/containerLogs/default/{pod}/c"]
    finally:
        await runner.cleanup()
        for res, name, ns in ((PODS, pod, "default"), (NODES, node, None)):
            try:
                await env.client.delete(res, name, namespace=ns, grace_period=0)
            except Exception:
                pass
