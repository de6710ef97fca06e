"""Pods on the real Docker engine: namespaces, init order, env, volumes."""

from __future__ import annotations

import docker
import pytest

from tests.fixtures.pods import PodEnv, cstatus

pytestmark = pytest.mark.docker


async def test_two_containers_share_the_network_namespace(pod_env: PodEnv,
                                                          docker_client: docker.DockerClient) -> None:
    m = pod_env.manager()
    await m.start()
    pod = pod_env.pod("web", [
        {"name": "server", "command": ["sh", "-c", "mkdir -p /www && echo hello-from-httpd > /www/index.html"
                                       " && exec httpd -f -p 8080 -h /www"]},
        {"name": "client", "command": ["sh", "-c", "until wget -q -O /tmp/got http://127.0.0.1:8080/; do "
                                       "sleep 0.2; done; cat /tmp/got; exec sleep 3600"]},
    ])
    await m.sync_pod(pod)
    pod_env.run(m)
    st = await pod_env.wait("web", lambda s: s["phase"] == "Running" and
                            all(c["ready"] for c in s["containerStatuses"]))
    assert st["podIP"] and st["podIP"] != "127.0.0.1"
    client = cstatus(st, "client")["containerID"].removeprefix("docker://")
    for _ in range(50):
        if b"hello-from-httpd" in docker_client.containers.get(client).logs():
            break
        import asyncio
        await asyncio.sleep(0.1)
    assert b"hello-from-httpd" in docker_client.containers.get(client).logs()
