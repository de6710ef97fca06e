"""`kedge cloud run` as a process with the controllers in its root: a real EdgeHub (certificate from the
cluster's CA) connects, registers and gets its pod; `kedge status -o json` shows the cloud role's view."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from runtime.cloud.pki_store import PKIStore
from runtime.edge.edgehub import EdgeHub
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import DEVICEMODELS, DEVICES, DEVICESTATUSES, PODS
from runtime.pki import certs, tls
from runtime.protocol import GROUP_META, OP_INSERT, SRC_EDGED, Message, new_message
from tests.cloud.test_controllers import pod
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudctl import node_body, prepare_cluster, spawn_cloud
from tests.fixtures.devicecloud import device, install_device_crds, model
from tests.fixtures.procs import KEDGE, Spawner
from tests.fixtures.wait import eventually_async


async def test_cloud_run_process_serves_edges_and_status(
    apiserver: ApiServer, kube: KubeClient, spawn: Spawner, tmp_path: Path
) -> None:
    await prepare_cluster(kube)
    root = tmp_path / "root"
    sets = [
        "hub.cert_port=0",
        "hub.websocket_port=0",
        "stream.port=0",
        "hub.bind=127.0.0.1",
        "metrics_address=127.0.0.1:0",
        "lease.renew_seconds=1",
    ]
    proc, _log, data = spawn_cloud(spawn, apiserver.kubeconfig, root, sets)
    ca = await PKIStore(kube).load_ca()
    assert ca is not None
    key = certs.new_key()
    cert = ca.sign_node_csr(certs.make_csr(key, "proc-1"), "proc-1", days=1)
    ctx = tls.client_context(ca.cert_der, certs.cert_der(cert), certs.key_der(key))
    received: list[Message] = []
    holder: list[EdgeHub] = []

    async def on_message(msg: Message) -> None:
        received.append(msg)
        await holder[0].ack(msg)

    hub = EdgeHub(
        data["hub"],
        "proc-1",
        on_message=on_message,
        outbox_path=tmp_path / "outbox.db",
        ssl_context=ctx,
        epoch="e1",
        heartbeat=1.0,
    )
    holder.append(hub)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        await hub.wait_connected(15)
        resp = await hub.request(
            new_message(SRC_EDGED, GROUP_META, OP_INSERT, "null/node/proc-1", node_body("proc-1")), 15
        )
        assert resp.content["Err"] is None
        await kube.create(PODS, pod("pp", "proc-1"))
        await eventually_async(
            lambda: any(m.resource == "default/pod/pp" for m in received), within=15, what="pod"
        )
        status = await asyncio.to_thread(_status, root)
        cloud: dict[str, Any] = status["cloud"]
        assert cloud["running"] is True and cloud["healthy"] is True, cloud
        (edge,) = cloud["edges"]
        assert (edge["name"], edge["peer"], edge["replica"]) == ("proc-1", "kedge", cloud["replica"])
        assert edge["since"] and edge["version"] and "lastKeepalive" in edge
        # times are ISO 8601 UTC in JSON (kedge status), so they compare as strings
        assert cloud["certificates"]["ca"]["notAfter"] > cloud["certificates"]["serving"]["notAfter"] > "2026"
        assert cloud["since"].endswith("Z") and edge["since"].endswith("Z")
        assert isinstance(cloud["tokens"], list) and cloud["pendingAcks"] >= 0
        # the Device controller is wired into the process: a Device reaches its node, its
        # DeviceStatus is created, and the node's reports are counted in /metrics
        await install_device_crds(kube)
        await kube.create(DEVICEMODELS, model())
        await kube.create(DEVICES, device("proc-dev", "proc-1"))
        await eventually_async(
            lambda: any(m.resource == "default/device/proc-dev" for m in received), 15, "device"
        )
        await eventually_async(lambda: _status_exists(kube, "proc-dev"), 15, "DeviceStatus")
        await hub.send(new_message("bus", "user", "upload", "SYS/dis/upload_records", "{}"))
        metrics = f"http://{data['health']}/metrics"
        await eventually_async(
            lambda: _metric(metrics, 'kedge_cloud_devices_total{event="uploads"} 1.0'), 15, "metric"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    proc.terminate()
    assert await asyncio.to_thread(proc.wait, 15) == 0
    down = await asyncio.to_thread(_status, root)
    assert down["cloud"]["running"] is False


async def _status_exists(kube: KubeClient, name: str) -> bool:
    try:
        await kube.get(DEVICESTATUSES, name, namespace="default")
        return True
    except KubeNotFound:
        return False


async def _metric(url: str, line: str) -> bool:
    async with httpx.AsyncClient() as c:
        return line in (await c.get(url)).text


def _status(root: Path) -> dict[str, Any]:
    out = subprocess.run(
        [*KEDGE, "status", "-o", "json", "--root", str(root)], capture_output=True, text=True, timeout=60
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data
