"""The end of the user path: `kedge reset` on the edge and on the cloud leaves nothing running.

A whole one-machine kedge with a running pod, then `kedge reset edge --force` (runtime stopped, the
node's containers removed, edge files gone; twice is fine) and `kedge reset cloud --force`
(API server and cloud stopped; twice is fine; a later --purge removes the embedded cluster's data).
"""

from __future__ import annotations

import json
from pathlib import Path

import docker

from runtime.paths import Paths
from tests.fixtures import require
from tests.fixtures.e2e import alive, kedge, start_e2e
from tests.fixtures.wait import eventually


def test_reset_edge_then_cloud_stops_everything_and_is_safe_twice(tmp_path: Path) -> None:
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    env, teardown = start_e2e(tmp_path, client)
    try:
        cloud, edge = env.cloud, env.edge
        pod = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "r"},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                {"name": "app", "image": "kedge.local/busybox:1", "command": ["sleep", "3600"]}]},
        }  # fmt: skip
        cloud.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
        eventually(lambda: len(edge.containers()) == 2, 60, "sandbox + app container of pod r")
        edge_pid, api_pid, cloud_pid = edge.pid(), cloud.pid("apiserver"), cloud.pid("cloud")
        assert alive(edge_pid) and alive(api_pid) and alive(cloud_pid)

        for _ in range(2):
            kedge("reset", "edge", "--root", str(edge.root), "--force")
        assert not alive(edge_pid)
        assert edge.containers() == {}, "kedge reset edge must remove the node's containers"
        ep = Paths.of(edge.root, "edge")
        assert not ep.config_file.exists() and not ep.pki.exists() and not ep.state.exists()
        assert cloud.get("pod", "r")["metadata"]["name"] == "r"  # edge reset never touches the cluster

        for _ in range(2):  # the second run has no install record and no API server: still exit 0
            kedge("reset", "cloud", "--root", str(cloud.root), "--force")
        eventually(lambda: not alive(api_pid) and not alive(cloud_pid), 20, "API server and cloud stopped")
        cp = Paths.of(cloud.root, "cloud")
        assert not cp.config_file.exists() and not cp.admin_kubeconfig.exists()
        data = Paths.of(cloud.root, "apiserver").state
        assert data.exists()  # the embedded cluster's data is kept without --purge ...
        kedge("reset", "cloud", "--root", str(cloud.root), "--force", "--purge")
        assert not data.exists()  # ... and a later --purge still knows it was an embedded install
    finally:
        teardown()
        client.close()
