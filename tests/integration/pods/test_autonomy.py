"""Autonomy with the real `kedge edge run` process hosting the pod manager (issue 9): kill -9 of the
runtime and a restart adopt the same containers (no restart); with the cloud gone, a restarted runtime
restores the pods from its cache and leaves them running; `kedge status` shows them while offline.

The cloud side is the REAL CloudHub with the recorded-shape test controller (tests/fixtures/edge.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from runtime.edge.pods import labels
from runtime.protocol import new_message
from tests.fixtures.edge import CloudRequests, RecordedCloud, make_edge_root
from tests.fixtures.procs import KEDGE, log_tail, start, stop
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

pytestmark = pytest.mark.docker


def patches(ctl: CloudRequests, name: str) -> list[dict[str, Any]]:
    return [json.loads(m.content)["status"] for m in ctl.requests if m.resource == f"default/podpatch/{name}"]


def running_ids(client: docker.DockerClient, node: str) -> dict[str, str]:
    out = {}
    for c in client.containers.list(filters={"label": f"{labels.NODE}={node}"}):
        out[c.labels[labels.CONTAINER]] = c.id
    return out


async def test_kill_9_and_offline_restart_keep_pods_running(
    recorded_cloud: RecordedCloud,
    tls_certs: TLSCerts,
    tmp_path: Path,
    busybox_image: str,
    docker_client: docker.DockerClient,
) -> None:
    node = f"auto-{uuid.uuid4().hex[:6]}"
    hub, ctl = recorded_cloud.hub, recorded_cloud.ctl
    make_edge_root(tmp_path, tls_certs, node, recorded_cloud.server)
    cmd = [*KEDGE, "edge", "run", "--root", str(tmp_path)]
    procs: list[subprocess.Popen[bytes]] = []

    def launch(n: int) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"edge-{n}.log"
        procs.append(start(cmd, log))
        return procs[-1], log

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "auto", "namespace": "default"},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "app",
                    "image": busybox_image,
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                }
            ],
        },
    }
    try:
        proc, log = launch(1)
        await eventually_async(lambda: ctl.node(node), 30, "node registration", proc=proc, log=log)
        pod = await ctl.bind_pod(pod)
        rv = pod["metadata"]["resourceVersion"]
        await hub.send(
            node,
            new_message("edgecontroller", "resource", "insert", "default/pod/auto", pod, resourceversion=rv),
        )
        await eventually_async(
            lambda: any(s.get("phase") == "Running" for s in patches(ctl, "auto")),
            60,
            "podpatch Running",
            proc=proc,
            log=log,
        )
        before = running_ids(docker_client, node)
        assert set(before) == {"POD", "app"}

        os.kill(proc.pid, signal.SIGKILL)  # the runtime dies hard; the pod must not notice
        proc.wait(timeout=10)
        sent = len(patches(ctl, "auto"))
        proc, log = launch(2)
        await eventually_async(
            lambda: len(patches(ctl, "auto")) > sent or None, 30, "status after restart", proc=proc, log=log
        )
        await asyncio.sleep(2)  # the thing under test: a few reconcile rounds, no container restarted
        assert running_ids(docker_client, node) == before
        last = patches(ctl, "auto")[-1]
        assert last["phase"] == "Running" and last["containerStatuses"][0]["restartCount"] == 0
        assert last["containerStatuses"][0]["containerID"] == f"docker://{before['app']}"

        await hub.stop()  # the cloud goes away ...
        os.kill(proc.pid, signal.SIGKILL)  # ... and the edge runtime restarts without it
        proc.wait(timeout=10)
        proc, log = launch(3)
        status: dict[str, Any] = {}

        def offline_pods() -> Any:
            out = subprocess.run(
                [*KEDGE, "status", "-o", "json", "--root", str(tmp_path)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            status.update(json.loads(out.stdout or "{}"))
            pods = (status.get("edge") or {}).get("pods") or []
            return pods if pods and pods[0].get("phase") == "Running" else None

        pods = await eventually_async(
            offline_pods, 40, "pods in `kedge status` while offline", proc=proc, log=log
        )
        assert pods[0]["name"] == "auto" and pods[0]["ready"] == "1/1" and pods[0]["restarts"] == 0
        assert status["edge"]["cloud"]["connected"] is False
        await asyncio.sleep(2)  # the thing under test: offline rounds, no container restarted
        assert running_ids(docker_client, node) == before, log_tail(log)
    finally:
        for p in procs:
            stop(p)
        for c in docker_client.containers.list(all=True, filters={"label": f"{labels.NODE}={node}"}):
            c.remove(force=True)
