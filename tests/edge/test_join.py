"""`kedge join` end to end: the real `kedge join`, `kedge edge run`, `kedge status` and `kedge reset`
binaries against the edgecloud fixture (real API server, real `kedge cloud run` bootstrap and CloudHub;
test-only edge-controller handlers — see tests/fixtures/edgecloud.py)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import pytest

from runtime.edge.layout import EdgeFiles
from runtime.edge.renew import renew_once
from runtime.paths import Paths
from tests.fixtures.edgecloud import EdgeCloud
from tests.fixtures.procs import KEDGE


def kedge(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEDGE, *args], capture_output=True, text=True, timeout=timeout)


def join_args(cloud: EdgeCloud, root: Path, node: str, *extra: str) -> list[str]:
    return [
        "join",
        "--token",
        cloud.token,
        "--server",
        f"127.0.0.1:{cloud.hub}",
        "--cert-port",
        str(cloud.bootstrap),
        "--node-name",
        node,
        "--root",
        str(root),
        "--set",
        "mqtt.port=0",  # the embedded MQTT broker on an ephemeral port
        *extra,
    ]


@pytest.mark.docker  # `kedge join` checks the Docker engine (preflight)
def test_join_to_ready_status_and_reset_twice(edge_cloud: EdgeCloud, tmp_path: Path) -> None:
    root = tmp_path / "edge"
    t0 = time.monotonic()
    done = kedge(*join_args(edge_cloud, root, "e2e-1", "--labels", "zone=a", "--with-edge-taint"))
    assert done.returncode == 0, done.stderr + "\n--- cloud log ---\n" + edge_cloud.log.read_text()[-3000:]
    assert "Ready after" in done.stderr
    elapsed = time.monotonic() - t0
    try:
        node = json.loads(edge_cloud.kubectl("get", "node", "e2e-1", "-o", "json").stdout)
        labels = node["metadata"]["labels"]
        assert labels["node-role.kubernetes.io/edge"] == "" and labels["kubernetes.io/hostname"] == "e2e-1"
        assert labels["zone"] == "a"
        assert {"key": "node-role.kubernetes.io/edge", "effect": "NoSchedule"} in node["spec"]["taints"]
        st = node["status"]
        assert {"cpu", "memory", "pods", "ephemeral-storage"} <= set(st["allocatable"])
        kubelet = st["nodeInfo"]["kubeletVersion"]
        assert kubelet.startswith("v1.") and "-kedge." in kubelet
        assert st["nodeInfo"]["bootID"] and st["nodeInfo"]["machineID"]
        ready = next(c for c in st["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        assert edge_cloud.kubectl("get", "node", "e2e-1").stdout.split()[-4] == "Ready"
        # status online: healthy, exit 0, stable schema
        on = kedge("status", "-o", "json", "--root", str(root))
        assert on.returncode == 0, on.stdout + on.stderr
        edge = json.loads(on.stdout)["edge"]
        assert edge["running"] and edge["healthy"] and edge["cloud"]["connected"]
        assert edge["cloud"]["peerKind"] == "kedge" and edge["node"]["ready"] is True
        not_after = dt.datetime.fromisoformat(edge["certificate"]["notAfter"].replace("Z", "+00:00"))
        assert edge["cache"]["epoch"] and not_after.timestamp() > time.time() + 300 * 86400
        # the edge runs on asyncio's own loop, not uvloop (runtime/eventloop.py: its memory goal)
        edge_pid = int(Paths.of(root, "edge").pid_file.read_text())
        assert "uvloop" not in Path(f"/proc/{edge_pid}/maps").read_text()
        # certificate renewal with the current certificate (no token) replaces the file in place
        files = EdgeFiles.of(root)
        before = files.cert.read_bytes()
        not_after = renew_once(files, "127.0.0.1", edge_cloud.bootstrap, "e2e-1")
        assert files.cert.read_bytes() != before and not_after > time.time() + 300 * 86400
        # re-running join converges (same key, same node), and is quick
        again = kedge(*join_args(edge_cloud, root, "e2e-1"))
        assert again.returncode == 0, again.stderr
        assert "reused" in again.stderr
        # a second machine cannot take the name
        other = kedge(*join_args(edge_cloud, tmp_path / "other", "e2e-1", "--dry-run"))
        assert other.returncode == 3 and "node-name" in other.stderr
    finally:
        r1 = kedge("reset", "edge", "--force", "--root", str(root))
    assert r1.returncode == 0, r1.stdout + r1.stderr
    assert "stopped" in r1.stdout
    off = kedge("status", "-o", "json", "--root", str(root))
    assert off.returncode == 1  # nothing installed any more
    r2 = kedge("reset", "edge", "--force", "--root", str(root))
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "nothing to reset" in r2.stderr and r2.stdout == ""
    print(f"join to Ready: {elapsed:.2f}s")
