"""An API server dials the kubelet endpoint kedge's cloud writes: the embedded one here, a real
kube-apiserver when KEDGE_TEST_KUBECONFIG names one (the control-plane fixture then is that cluster).

The cloud (direct mode) points the edge node's InternalIP and kubelet port at 127.0.0.1 and a TLS
listener standing in for the stream endpoint; `kubectl logs` through the API server must reach it
(kube-apiserver checks no proxyable address for logs and exec, and verifies no kubelet serving
certificate without --kubelet-certificate-authority; the embedded server does as it does). The whole
path to a container on a kedge edge is tests/e2e/test_streams.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import uuid

from aiohttp import web

from runtime.cloud.tunnel.endpoint import KubeletEndpoint, KubeletEndpoints
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import NODES, PODS
from runtime.pki import certs, tls
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.tlscerts import TLSCerts


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
