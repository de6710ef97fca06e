"""The runtime drives the real PodManager on the real Docker engine: a pod pushed by the cloud runs,
its status goes up as a podpatch carrying the UID, a deletionTimestamp stops it and sends the final
delete with the UID precondition (capture seq 67-83). Channel real; answers from the cloud's request
handlers over the embedded API server."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import docker

from runtime.edge.run import EdgeRuntime
from runtime.protocol import new_message
from tests.fixtures.edge import CloudRequests, RecordedCloud, make_edge_root, running
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async


def statuses(ctl: CloudRequests, name: str) -> list[dict[str, Any]]:
    return [json.loads(m.content) for m in ctl.requests if m.resource == f"default/podpatch/{name}"]


async def test_pod_runs_reports_and_terminates(
    recorded_cloud: RecordedCloud,
    tls_certs: TLSCerts,
    tmp_path: Path,
    busybox_image: str,
    docker_client: docker.DockerClient,
) -> None:
    node = f"agent-{uuid.uuid4().hex[:6]}"
    hub, ctl = recorded_cloud.hub, recorded_cloud.ctl
    cfg = make_edge_root(tmp_path, tls_certs, node, recorded_cloud.server)
    cfg.node.ip = "192.0.2.9"  # edge.toml node.ip: the Node's InternalIP and every pod's hostIP
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": busybox_image,
                    "command": ["sleep", "3600"],
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
        },
    }
    try:
        async with running(EdgeRuntime(cfg, tmp_path, pods=True), 30) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            pod = await ctl.bind_pod(pod)
            uid, rv = pod["metadata"]["uid"], int(pod["metadata"]["resourceVersion"])
            await hub.send(
                node,
                new_message(
                    "edgecontroller", "resource", "insert", "default/pod/web", pod, resourceversion=str(rv)
                ),
            )
            await eventually_async(
                lambda: (
                    print([str(m.content)[-900:] for m in ctl.requests if "podpatch" in m.resource])
                    or any(s["status"].get("phase") == "Running" for s in statuses(ctl, "web"))
                ),
                60,
                "podpatch Running",
            )
            assert all(s["metadata"] == {"uid": uid} for s in statuses(ctl, "web"))
            assert {s["status"].get("hostIP") for s in statuses(ctl, "web")} <= {"192.0.2.9", None}
            assert any(s["status"].get("hostIP") == "192.0.2.9" for s in statuses(ctl, "web"))
            registered = await ctl.node(node)
            assert registered is not None
            assert {"type": "InternalIP", "address": "192.0.2.9"} in registered["status"]["addresses"]
            assert all("qosClass" not in s["status"] for s in statuses(ctl, "web"))
            assert rt.pod_manager is not None and rt.pod_manager.local_status()[0]["phase"] == "Running"
            gone = json.loads(json.dumps(pod))
            gone["metadata"].update(deletionTimestamp="2026-11-28T10:00:00Z", deletionGracePeriodSeconds=1)
            for later in (str(rv + 1), str(rv + 2)):  # several updates while a pod terminates (recorded)
                gone["metadata"]["resourceVersion"] = later
                await hub.send(
                    node,
                    new_message(
                        "edgecontroller", "resource", "update", "default/pod/web", gone, resourceversion=later
                    ),
                )
            await eventually_async(
                lambda: [m for m in ctl.requests if m.operation == "delete"], 60, "final delete"
            )
            await asyncio.sleep(0.5)  # let statuses in flight land before counting
            reported = len(statuses(ctl, "web"))
            await asyncio.sleep(1.5)  # the stopped containers' late statuses: not reported (edgecore)
            assert len(statuses(ctl, "web")) == reported
            deletes = [m for m in ctl.requests if m.operation == "delete"]
            assert len(deletes) == 1 and deletes[0].resource == "default/pod/web"
            assert deletes[0].content == {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
            left = docker_client.containers.list(all=True, filters={"label": f"io.kedge.node={node}"})
            assert not left, [c.name for c in left]
    finally:
        for c in docker_client.containers.list(all=True, filters={"label": f"io.kedge.node={node}"}):
            c.remove(force=True)
