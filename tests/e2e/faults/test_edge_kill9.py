"""Scenario 3: the edge runtime (in its namespace, joined to a real cloud) SIGKILLed at random moments
while the cloud pushes pod updates into its cache, N times. Each time the cache database passes
`PRAGMA integrity_check`; at the end the cache holds the last update of every pod (no acked object
lost) and the pods' containers were adopted, never restarted.

    pytest tests/e2e/faults/test_edge_kill9.py -s            # 6 kills (50: -m slow)
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.faults.harness import NsEdge, fault_lab, running_containers
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root
PODS = ("steady-0", "steady-1")


def cached_generations(edge: NsEdge) -> dict[str, str]:
    """pod name → its `gen` label as the edge's cache holds it (read-only, beside the running edge)."""
    db = sqlite3.connect(f"file:{edge.paths.state / 'cache.db'}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT name, data FROM objects WHERE name IN (?, ?)", PODS).fetchall()
    finally:
        db.close()
    out = {}
    for name, data in rows:
        obj = orjson.loads(data)
        if obj.get("kind", "Pod") == "Pod":
            out[name] = (obj.get("metadata", {}).get("labels") or {}).get("gen", "")
    return out


def integrity(edge: NsEdge) -> str:
    db = sqlite3.connect(edge.paths.state / "cache.db", timeout=10)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def kill_scenario(tmp: Path, kills: int) -> dict[str, Any]:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    with fault_lab(tmp, edges=1) as lab:
        edge = lab.edges[0]
        for name in PODS:
            lab.pinned_pod(name, edge, gen="start")
        before = eventually(
            lambda: (c := running_containers(edge)).keys() >= set(PODS) and c, 120, "pods Running"
        )
        corrupt = 0
        kubectl = ["kubectl", "--kubeconfig", str(lab.cloud.kubeconfig)]
        for i in range(kills):
            label = subprocess.Popen(  # the update lands while the edge is being killed
                [*kubectl, "label", "pod", *PODS, f"gen={i}", "--overwrite"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(rng.uniform(0.0, 1.5))
            edge.kill9()
            assert label.wait(60) == 0, f"kubectl label gen={i} failed"
            corrupt += integrity(edge) != "ok"
            edge.run_detached()
        killed = time.monotonic()
        want = {name: str(kills - 1) for name in PODS}
        try:
            eventually(lambda: cached_generations(edge) == want, 120, "the last update in the edge cache")
        except AssertionError:
            pass  # reported as lost below
        converge = round(time.monotonic() - killed, 1)
        cached = cached_generations(edge)
        after = running_containers(edge)
        restarts = sum(1 for name in PODS if after.get(name) != before[name])
        eventually(edge.connected, 60, "the edge reconnected")
        return lab.report(
            f"edge-kill9-x{kills}",
            seed=seed,
            kills=kills,
            corrupt_databases=corrupt,
            lost_api_updates=sum(1 for n in PODS if cached.get(n) != want[n]),
            lost_twin_values=None,  # no device in this scenario
            restarts_of_unchanged_pods=restarts,
            converge_seconds=converge,
        )


def check(f: dict[str, Any]) -> None:
    assert f["corrupt_databases"] == 0 and f["lost_api_updates"] == 0, f
    assert f["restarts_of_unchanged_pods"] == 0, f


def test_edge_kill9_during_cache_writes(tmp_path: Path) -> None:
    check(kill_scenario(tmp_path, 6))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_edge_kill9_during_cache_writes_50_times(tmp_path: Path) -> None:
    check(kill_scenario(tmp_path, 50))
