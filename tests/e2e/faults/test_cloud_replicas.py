"""Scenario 2, second half: two `kedge cloud run` replicas on one cluster, both edges connected to the
first, which is SIGKILLed. The edges reconnect to the second; its resync sends each only what changed
since the acknowledgements the first replica stored (the second follows them through the ObjectSync
CRs, runtime/cloud/controllers/syncstore.py) — counted from its `resync sent N message(s)` log line —
nothing is lost, no unchanged pod restarts, nothing is evicted, and the second replica ends up owning
both nodes.

How an edge picks a cloud: one address, as a Service gives in a cluster (design.md §5 replicas). Here
the edges dial replica A's hub address; after the kill their connections are refused until the
"Service" drops A — an nftables dnat in each edge's namespace from A's port to B's — which the test
does after making its changes, so every change falls into the resync it counts.

    pytest tests/e2e/faults/test_cloud_replicas.py -s
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runtime.cloud.controllers.liveness import ANN_OWNER
from runtime.paths import Paths
from tests.e2e.faults.harness import (
    DISCONNECTED,
    UNREACHABLE,
    FaultLab,
    converge,
    fault_lab,
    label,
    ready,
    resync_counts,
    running_containers,
    taints,
    uids,
    unacked,
)
from tests.fixtures.e2e import alive, free_port
from tests.fixtures.procs import KEDGE, start, stop
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root
MINE = ("steady-a", "steady-b", "changing")  # on edge 0
THEIRS = ("other-a", "other-b", "gone")  # on edge 1
REPLICA_B = "fault-replica-b"


def owners(lab: FaultLab) -> dict[str, str]:
    return {
        e.node: (lab.cloud.get("node", e.node)["metadata"].get("annotations") or {}).get(ANN_OWNER, "")
        for e in lab.edges
    }


def start_replica(lab: FaultLab, root: Path, hub_port: int) -> Any:
    """A second `kedge cloud run` with the first one's config and cluster, its own ports and root."""
    cfg = Paths.of(lab.cloud.root, "cloud").config_file
    cmd = [
        *KEDGE, "cloud", "run", "--root", str(root), "--kubeconfig", str(lab.cloud.kubeconfig),
        "--config", str(cfg), "--set", f"hub.websocket_port={hub_port}",
        "--set", f"hub.cert_port={free_port()}", "--set", "metrics_address=127.0.0.1:0",
        "--set", "stream.port=0",
    ]  # fmt: skip
    proc = start(cmd, root / "cloud-run.log", env={**os.environ, "KEDGE_REPLICA_ID": REPLICA_B})
    addresses = Paths.of(root, "cloud").state / "addresses.json"
    eventually(
        lambda: proc.poll() is None and addresses.exists(),
        90,
        "replica B listening",
        log=root / "cloud-run.log",
    )
    return proc


def replica_kill_scenario(tmp: Path) -> dict[str, Any]:
    with fault_lab(tmp, edges=2) as lab:
        mine, theirs = lab.edges
        host = lab.lab.host_address
        b_root, b_port = tmp / "cloud-b", free_port()
        b = start_replica(lab, b_root, b_port)
        try:
            for name in MINE:
                lab.pinned_pod(name, mine)
            for name in THEIRS:
                lab.pinned_pod(name, theirs)
            before = eventually(
                lambda: (c := running_containers(mine)).keys() >= set(MINE) and c, 120, "pods"
            )
            before_theirs = eventually(
                lambda: (c := running_containers(theirs)).keys() >= set(THEIRS) and c, 120, "their pods"
            )
            before_uids = uids(lab)
            a_owner = owners(lab)
            assert set(a_owner.values()) - {REPLICA_B, ""} and REPLICA_B not in a_owner.values(), a_owner
            time.sleep(3)  # every ack flushed by A (once a second) and followed by B (a watch)

            pid = lab.cloud.pid("cloud")
            assert pid is not None and alive(pid)
            os.kill(pid, signal.SIGKILL)  # both edges are connected to A
            eventually(lambda: not alive(pid), 10, "replica A to die")
            killed = time.monotonic()

            # while the edges' reconnects are refused: 3 changes for edge 0, 1 for edge 1
            label(lab, "steady-b", "while-moving")
            label(lab, "changing", "while-moving")
            lab.pinned_pod("fresh", mine)
            lab.cloud.kubectl("delete", "pod", "gone", "--wait=false")
            expected = {mine.node: 3, theirs.node: 1}
            unchanged = [("steady-a", before), ("other-a", before_theirs), ("other-b", before_theirs)]
            time.sleep(2)  # B's watches carry the changes (milliseconds on loopback) before its resyncs
            log = b_root / "cloud-run.log"
            offset = log.stat().st_size
            for edge in lab.edges:  # the Service drops A: new connections go to B
                edge.ns.redirect(host, lab.cloud.hub_port, b_port)

            seen: set[str] = set()
            last: dict[str, bool] = {}

            def converged() -> bool:
                pods, a, t = lab.pods(), running_containers(mine), running_containers(theirs)
                seen.update(taints(lab, mine) | taints(lab, theirs))
                last.update(
                    {
                        "create fresh": "fresh" in a and ready(pods, "fresh"),
                        "changes acked": not unacked(lab, mine) and not unacked(lab, theirs),
                        "delete gone": "gone" not in t and "gone" not in pods,
                        "edges connected": mine.connected() and theirs.connected(),
                        "owned by B": set(owners(lab).values()) == {REPLICA_B},
                    }
                )
                return all(last.values())

            converge_s = converge(converged, "converged on replica B", killed)
            counts = eventually(
                lambda: (c := resync_counts(log, offset)).keys() >= set(expected) and c, 30, "B's resyncs"
            )
            after = {**running_containers(mine), **running_containers(theirs)}
            now = uids(lab)
            kept = [*MINE, "other-a", "other-b"]
            return lab.report(
                "cloud-replica-kill9",
                resync_messages={n: counts[n] for n in expected},
                resync_expected=expected,
                lost_api_updates=sum(1 for k, ok in last.items() if not ok and k != "owned by B"),
                lost=sorted(k for k, ok in last.items() if not ok),
                lost_twin_values=None,  # no device in this scenario
                restarts_of_unchanged_pods=sum(1 for n, b4 in unchanged if after.get(n) != b4[n]),
                evicted=sorted(n for n in kept if now.get(n) != before_uids[n]),
                taints_seen=sorted(seen),
                owners_before=sorted(set(a_owner.values())),
                owners_after=sorted(set(owners(lab).values())),
                converge_seconds=converge_s,
            )
        finally:
            stop(b)


def test_replica_kill9_edges_move_to_the_other_and_resync_only_changes(tmp_path: Path) -> None:
    f = replica_kill_scenario(tmp_path)
    assert f["lost"] == [] and f["restarts_of_unchanged_pods"] == 0 and f["evicted"] == [], f
    assert f["resync_messages"] == f["resync_expected"], f
    assert UNREACHABLE not in f["taints_seen"] and DISCONNECTED not in f["taints_seen"], f
