"""Two edges on one Docker engine (two roots, two node names) joined to one cloud: each runs only its
own pods, and restarting or resetting one never touches the other's containers.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import docker

from tests.fixtures import require
from tests.fixtures.e2e import E2E, Edge, kedge, remove_edge, start_e2e
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"


def pinned(name: str, node: str) -> str:
    doc: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {
                     "nodeSelector": {"kubernetes.io/hostname": node},
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}]}}},
    }  # fmt: skip
    return json.dumps(doc)


def running(env: E2E, edge: Edge, app: str) -> dict[str, str] | None:
    """Container id → start time of the app's pods once 2 are Running on `edge` (4 containers)."""
    pods = env.cloud.get("pods", "-l", f"app={app}")["items"]
    ok = [p for p in pods if p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == edge.node]
    if len(ok) != 2:
        return None
    uids = {p["metadata"]["uid"] for p in ok}
    ctrs = {cid: c["started"] for cid, c in edge.containers().items()
            if c["labels"].get("io.kedge.pod.uid") in uids and c["running"]}  # fmt: skip
    return ctrs if len(ctrs) == 4 else None


def test_two_edges_on_one_docker_keep_to_their_own_containers(tmp_path: Path) -> None:
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    env, teardown = start_e2e(tmp_path, client)
    other = Edge(tmp_path / "edge2", f"e2e-{uuid.uuid4().hex[:6]}", env.cloud, client)
    try:
        e1 = env.edge
        other.join(env.cloud.token())
        nodes = {n["metadata"]["name"] for n in env.cloud.get("nodes")["items"]}
        assert nodes == {e1.node, other.node}
        env.cloud.kubectl("apply", "-f", "-", stdin=pinned("one", e1.node))
        env.cloud.kubectl("apply", "-f", "-", stdin=pinned("two", other.node))
        mine = eventually(lambda: running(env, e1, "one"), 90, f"app one Running on {e1.node}")
        theirs = eventually(lambda: running(env, other, "two"), 90, f"app two Running on {other.node}")
        assert not set(mine) & set(other.containers()) and not set(theirs) & set(e1.containers())

        e1.kill9()  # restart of edge 1: adopts its own containers, leaves edge 2's alone
        e1.join(env.cloud.token())
        eventually(e1.connected, 30, "edge 1 reconnected")
        assert running(env, e1, "one") == mine
        assert running(env, other, "two") == theirs

        kedge("reset", "edge", "--root", str(e1.root), "--force")  # reset of edge 1 only
        eventually(lambda: not e1.containers(), 30, "edge 1's containers removed by its reset")
        assert running(env, other, "two") == theirs, "resetting one edge touched the other's containers"
        assert other.connected()
    finally:
        remove_edge(other)
        teardown()
        client.close()
