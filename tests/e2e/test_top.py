"""`kubectl top` end to end (issue 20, "Resource metrics"): real `kedge init --embedded` (its API
server serving metrics.k8s.io from what the cloud holds), `kedge join`, Docker containers that burn
CPU and hold memory, kubectl 1.32 as the client. The same module checks `init --embedded --event-ttl`
reaching the API server: an Event is gone after that TTL.
"""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.fixtures import require
from tests.fixtures.e2e import E2E, start_e2e
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"
HOG_MIB = 48
WINDOW_READINGS = 5  # kubectl top readings, one per usage report
BUSY_MARGIN = 0.02  # cores: a spinning thread's least share on a loaded 2-core machine, above idle
EVENT_TTL = 6  # seconds, through `kedge init --embedded --event-ttl`


@pytest.fixture(scope="module")
def top(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    require("docker")
    require("kubectl")
    client = docker.from_env(timeout=60)
    env, teardown = start_e2e(
        tmp_path_factory.mktemp("top"), client,
        join_args=("--set", "usage.interval_seconds=2"), init_args=("--event-ttl", f"{EVENT_TTL}s"),
    )  # fmt: skip
    try:
        yield env
    finally:
        teardown()
        client.close()


def _pod(e2e: E2E, name: str, containers: list[dict[str, Any]]) -> None:
    doc = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": e2e.edge.node, "terminationGracePeriodSeconds": 1, "containers": containers},
    }  # fmt: skip
    e2e.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(doc))


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()[1:]]


def _cores(q: str) -> float:
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def _mib(q: str) -> float:
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", q)
    assert m, q
    return int(m.group(1)) * {None: 1 / 2**20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024}[m.group(2)]


def test_kubectl_top_shows_a_busy_container_and_a_memory_hog(top: E2E) -> None:
    """A busy container beside an idle one, measured over several reports: the busy one's CPU stands
    above the idle one's by a margin a loaded machine still gives one spinning thread (its share of 2
    cores among a dozen runnable tasks is well over 20m), and no more than one core; the idle one stays
    near zero whatever the load (it sleeps). Memory does not depend on load: the hog's 48 MiB."""
    name = f"top-{uuid.uuid4().hex[:5]}"
    _pod(top, name, [
        {"name": "burn", "image": IMAGE, "command": ["sh", "-c", "yes > /dev/null"]},
        {"name": "idle", "image": IMAGE, "command": ["sleep", "3600"]},
        {"name": "hog", "image": IMAGE,
         "command": ["sh", "-c", f"dd if=/dev/zero of=/dev/shm/fill bs=1M count={HOG_MIB} && sleep 3600"]},
    ])  # fmt: skip
    try:

        def containers() -> dict[str, tuple[float, float]] | None:
            done = top.cloud.kubectl("top", "pod", name, "--containers", check=False)
            rows = {r[1]: (_cores(r[2]), _mib(r[3])) for r in _rows(done) if r and r[0] == name}
            return rows if {"burn", "idle", "hog"} <= rows.keys() else None

        # the first rates cover the containers' start: wait until the hog is full and burn shows
        eventually(lambda: (r := containers()) and r["hog"][1] >= HOG_MIB and r["burn"][0] > 0, 90,
                   "kubectl top pod --containers to show the three containers")  # fmt: skip
        window = []
        for _ in range(WINDOW_READINGS):  # one reading per usage report (usage.interval_seconds=2)
            time.sleep(2)
            rows = containers()
            assert rows is not None, "a container left kubectl top's answer"
            window.append(rows)
        burn = statistics.median(r["burn"][0] for r in window)
        idle = statistics.median(r["idle"][0] for r in window)
        assert idle < BUSY_MARGIN < burn - idle and burn <= 1.1, window  # `yes` is one thread: ≤ 1 core
        hog_mem = window[-1]["hog"][1]
        assert HOG_MIB <= hog_mem <= HOG_MIB * 1.1, window  # the hog's 48 MiB of tmpfs, within 10 %
        pod_row = [r for r in _rows(top.cloud.kubectl("top", "pod")) if r[0] == name]
        assert pod_row and _cores(pod_row[0][1]) > BUSY_MARGIN and _mib(pod_row[0][2]) >= HOG_MIB, pod_row
        labelled = _rows(top.cloud.kubectl("top", "pod", "-l", f"app={name}"))
        assert [r[0] for r in labelled] == [name]
        everywhere = _rows(top.cloud.kubectl("top", "pod", "-A"))
        assert any(r[:2] == ["default", name] for r in everywhere), everywhere
    finally:
        top.cloud.kubectl("delete", "pod", name, "--wait=false", check=False)


def test_kubectl_top_node_and_the_raw_api(top: E2E) -> None:
    node = top.edge.node

    def row() -> list[str] | None:
        found = [r for r in _rows(top.cloud.kubectl("top", "node", check=False)) if r and r[0] == node]
        return found[0] if found and found[0][1] != "<unknown>" else None

    r = eventually(row, 60, "kubectl top node to show the edge")
    assert _cores(r[1]) > 0 and r[2].endswith("%") and _mib(r[3]) > 0 and r[4].endswith("%"), r
    groups = json.loads(top.cloud.kubectl("get", "--raw", "/apis"))["groups"]
    assert {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1",
            "version": "v1beta1"}], "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1",
            "version": "v1beta1"}} in groups  # fmt: skip
    one = json.loads(top.cloud.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{node}"))
    assert one["kind"] == "NodeMetrics" and one["metadata"]["name"] == node
    assert one["metadata"]["labels"]["kubernetes.io/hostname"] == node
    assert one["usage"]["cpu"].endswith("n") and 1.5 < float(one["window"].rstrip("s")) < 10, one
    missing = top.cloud.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/absent", check=False)
    assert missing == ""  # 404 NotFound: kubectl prints the error on stderr only


def test_init_embedded_passes_event_ttl_to_the_api_server(top: E2E) -> None:
    name = f"ttl-{uuid.uuid4().hex[:5]}"
    ev = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
        "reason": "Test", "message": "kept for the TTL", "type": "Normal",
    }  # fmt: skip
    top.cloud.kubectl("create", "-f", "-", stdin=json.dumps(ev))
    made = time.monotonic()
    assert top.cloud.get("events", name)["metadata"]["name"] == name

    def gone() -> bool:
        return "NotFound" in _get_err(top, name)

    eventually(gone, 60, f"the Event to expire after --event-ttl {EVENT_TTL}s")
    assert time.monotonic() - made >= EVENT_TTL - 1  # not before the TTL (1 s: kubectl's own time)


def _get_err(e2e: E2E, name: str) -> str:
    from tests.fixtures.e2e import run

    done = run(["kubectl", "--kubeconfig", str(e2e.cloud.kubeconfig), "get", "event", name], check=False)
    return done.stderr
