"""A chatty container's `kubectl logs -f` does not starve its node, and holds bounded memory (issue 19).

One pod prints 3 to 5 MB/s of 100-byte lines. Two `kubectl logs -f` follow it: one read at full speed,
one whose reader never reads (kubectl blocks on its stdout pipe, so backpressure reaches back through
the API server, the cloud's stream endpoint and the tunnel to the edge's reader of the engine). While
both run: a new pod on the node becomes Running and Ready (the pod manager and the pods' status
messages get through), the node's Lease keeps being renewed and the node stays Ready; and after the
container has printed many times what any buffer may hold, the edge's, the cloud's and the API
server's resident memory have grown by less than that. The stalled follower then resumes. No timing
asserts: generous waits only. The edge is joined with its containers' logs kept in 3 files of 50 MiB
(edge.toml ``runtime.container_log_max_mib``/``_files``, docker's json-file ``max-size``/``max-file``).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.e2e.test_streams import IMAGE, apply_pod, logs, running
from tests.fixtures import require
from tests.fixtures.e2e import E2E, start_e2e
from tests.fixtures.wait import eventually

CHATTY = "while true; do head -c 500000 /dev/zero | tr '\\0' x | fold -w 99; sleep 0.1; done"
BOUND = 48 << 20  # growth of any one process's resident memory allowed while twice that goes by
MB = 1 << 20


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """The edge joined with its containers' json-file logs raised (edge.toml runtime.container_log_*)."""
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    logs = ("--set", "runtime.container_log_max_mib=50", "--set", "runtime.container_log_max_files=3")
    env, teardown = start_e2e(tmp_path_factory.mktemp("e2e"), client, join_args=logs)
    try:
        yield env
    finally:
        teardown()
        client.close()


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def cloud_processes(e2e: E2E) -> dict[str, int]:
    found = subprocess.run(["pgrep", "-f", str(e2e.cloud.root)], capture_output=True, text=True).stdout
    procs = {}
    for pid in found.split():
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
        procs["apiserver" if b"apiserver" in cmd else "cloud"] = int(pid)
    assert set(procs) == {"apiserver", "cloud"}, procs
    return procs


def renew_time(e2e: E2E) -> str:
    lease = e2e.cloud.get("lease", e2e.edge.node, "-n", "kube-node-lease")
    return str(lease["spec"].get("renewTime") or "")


def node_ready(e2e: E2E) -> bool:
    conds = e2e.cloud.get("node", e2e.edge.node)["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def follow(e2e: E2E, pod: str) -> subprocess.Popen[bytes]:
    cmd = ["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "logs", "-f", "--tail=0", pod]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def test_a_stalled_and_a_full_speed_logs_f_do_not_starve_the_node(e2e: E2E) -> None:
    apply_pod(
        e2e, "chatty", {"containers": [{"name": "app", "image": IMAGE, "command": ["sh", "-c", CHATTY]}]}
    )
    eventually(lambda: running(e2e, "chatty"), 60, "pod chatty running")
    (app,) = e2e.edge.containers(pod_name="chatty", container_kind="app")
    logs = e2e.edge.docker.api.inspect_container(app)["HostConfig"]["LogConfig"]
    assert logs == {"Type": "json-file", "Config": {"max-size": "50m", "max-file": "3"}}
    procs: dict[str, Any] = {"edge": e2e.edge.pid(), **cloud_processes(e2e)}
    stalled, fast = follow(e2e, "chatty"), follow(e2e, "chatty")
    got = {"bytes": 0}

    def drain() -> None:
        assert fast.stdout is not None
        while chunk := os.read(fast.stdout.fileno(), 1 << 20):
            got["bytes"] += len(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        eventually(lambda: got["bytes"] > 4 * MB, 60, "the full-speed follower reading")
        before = {k: rss(p) for k, p in procs.items()}
        first_renewal = renew_time(e2e)

        sleeper = {"containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}]}
        apply_pod(e2e, "newcomer", sleeper)
        eventually(lambda: running(e2e, "newcomer"), 120, "a new pod Running and Ready during the streams")
        eventually(lambda: renew_time(e2e) != first_renewal, 60, "the node's Lease renewed meanwhile")
        assert node_ready(e2e)

        start = got["bytes"]
        eventually(lambda: got["bytes"] - start > 2 * BOUND, 180, "twice the bound printed meanwhile")
        grown = {k: rss(p) - before[k] for k, p in procs.items()}
        assert all(g < BOUND for g in grown.values()), f"resident memory grew (bytes): {grown}"
        assert stalled.poll() is None and fast.poll() is None  # both sessions still open
        assert node_ready(e2e)

        assert stalled.stdout is not None  # the stalled follower, read again, still follows
        assert len(os.read(stalled.stdout.fileno(), 1 << 20)) > 0
    finally:
        for proc in (stalled, fast):
            proc.terminate()
            proc.wait(10)
        reader.join(10)
        for name in ("chatty", "newcomer"):
            e2e.cloud.kubectl("delete", "pod", name, "--wait=false")


def test_logs_f_of_a_finished_container_reads_as_logs_does(e2e: E2E) -> None:
    """`logs -f` (served from the json-file log where the edge can read it) and `logs` (from the
    engine) agree on every option; a line longer than the engine's 16 KiB entries comes whole."""
    script = (
        "for i in 1 2 3; do echo out-$i; echo err-$i >&2; done; head -c 20000 /dev/zero | tr '\\0' y; echo"
    )
    app = {"name": "app", "image": IMAGE, "command": ["sh", "-c", script]}
    apply_pod(e2e, "finisher", {"restartPolicy": "Never", "containers": [app]})
    phase = lambda: e2e.cloud.get("pod", "finisher")["status"].get("phase")  # noqa: E731
    eventually(lambda: phase() == "Succeeded", 60, "pod finisher finished")
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    whole = logs(e2e, "finisher")
    assert whole.count("\n") == 7 and "y" * 20000 + "\n" in whole
    for opts in [(), ("--tail=2",), ("--tail=0",), ("--timestamps",), ("--timestamps", "--tail=3"),
                 (f"--since-time={past}",), (f"--since-time={future}",), ("--limit-bytes=7",)]:  # fmt: skip
        assert logs(e2e, "finisher", "-f", *opts) == logs(e2e, "finisher", *opts), opts
    e2e.cloud.kubectl("delete", "pod", "finisher", "--wait=false")
