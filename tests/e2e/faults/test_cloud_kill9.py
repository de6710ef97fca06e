"""Scenario 2: `kedge cloud run` SIGKILLed while it streams pod updates to an edge, changes made while
it is down, then the cloud started again (`kedge init` re-run). Both edges reconnect, and the resync
sends each only what changed since its acknowledgements — the count is asserted from the cloud's
`resync sent N message(s)` log line — and everything converges with no unchanged pod restarted.

    pytest tests/e2e/faults/test_cloud_kill9.py -s
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.paths import Paths
from tests.e2e.faults.harness import (
    FaultLab,
    NsEdge,
    converge,
    fault_lab,
    label,
    ready,
    resync_counts,
    running_containers,
)
from tests.fixtures.e2e import alive
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root
MINE = ("steady-a", "steady-b", "steady-c", "stream", "changing")  # on edge 0
THEIRS = ("other-a", "other-b", "gone")  # on edge 1


def stream(lab: FaultLab, stop: threading.Event, sent: list[int]) -> None:
    """Label pod `stream` again and again: the cloud pushes each update to edge 0."""
    while not stop.is_set():
        label(lab, "stream", str(len(sent)))
        sent.append(1)


def converged(lab: FaultLab, mine: NsEdge, theirs: NsEdge, last: dict[str, bool]) -> bool:
    pods, a, b = lab.pods(), running_containers(mine), running_containers(theirs)
    last.update(
        {
            "create fresh": "fresh" in a and ready(pods, "fresh"),
            "delete gone": "gone" not in b and "gone" not in pods,
            "edges connected": mine.connected() and theirs.connected(),
        }
    )
    return all(last.values())


def cloud_kill_scenario(tmp: Path) -> dict[str, Any]:
    with fault_lab(tmp, edges=2) as lab:
        mine, theirs = lab.edges
        for name in MINE:
            lab.pinned_pod(name, mine)
        for name in THEIRS:
            lab.pinned_pod(name, theirs)
        before = eventually(lambda: (c := running_containers(mine)).keys() >= set(MINE) and c, 120, "pods")
        before_theirs = eventually(
            lambda: (c := running_containers(theirs)).keys() >= set(THEIRS) and c,
            120,
            "the other edge's pods",
        )
        time.sleep(3)  # every ack flushed (the ack store writes once a second)

        stop, sent = threading.Event(), []
        streamer = threading.Thread(target=stream, args=(lab, stop, sent))
        streamer.start()
        eventually(lambda: len(sent) >= 3, 60, "the update stream running")
        time.sleep(random.uniform(0.0, 1.0))
        pid = lab.cloud.pid("cloud")
        assert pid is not None and alive(pid)
        os.kill(pid, signal.SIGKILL)  # mid-stream
        stop.set()
        streamer.join(30)
        eventually(lambda: not alive(pid), 10, "kedge cloud run to die")

        # while the cloud is down: edge 0 gets a new pod, an updated one and the stream's last update;
        # edge 1 a deletion — 3 and 1 changes, all a resync may send
        label(lab, "stream", "after-kill")
        label(lab, "changing", "while-down")
        lab.pinned_pod("fresh", mine)
        lab.cloud.kubectl("delete", "pod", "gone", "--wait=false")
        expected = {mine.node: 3, theirs.node: 1}

        log = Paths.of(lab.cloud.root, "cloud").log_file
        offset = log.stat().st_size
        restarted = time.monotonic()
        try:
            lab.cloud.init("--advertise-address", lab.lab.host_address)
        except subprocess.SubprocessError as exc:
            raise AssertionError(f"restarting the cloud failed: {exc}") from exc
        last: dict[str, bool] = {}
        converge_s = converge(
            lambda: converged(lab, mine, theirs, last), "converged after the restart", restarted
        )
        counts = eventually(
            lambda: (c := resync_counts(log, offset)).keys() >= set(expected) and c, 30, "resyncs"
        )
        after, after_theirs = running_containers(mine), running_containers(theirs)
        unchanged = [(n, before, after) for n in ("steady-a", "steady-b", "steady-c")]
        unchanged += [(n, before_theirs, after_theirs) for n in ("other-a", "other-b")]
        return lab.report(
            "cloud-kill9",
            stream_updates_before_kill=len(sent),
            resync_messages={n: counts[n] for n in expected},
            resync_expected=expected,
            lost_api_updates=sum(1 for ok in last.values() if not ok),
            lost=sorted(k for k, ok in last.items() if not ok),
            lost_twin_values=None,  # no device in this scenario
            restarts_of_unchanged_pods=sum(1 for n, b, a in unchanged if a.get(n) != b[n]),
            converge_seconds=converge_s,
        )


def test_cloud_kill9_mid_stream_resyncs_only_changes(tmp_path: Path) -> None:
    f = cloud_kill_scenario(tmp_path)
    assert f["lost"] == [] and f["restarts_of_unchanged_pods"] == 0, f
    assert f["resync_messages"] == f["resync_expected"], f
