"""Scenario 6 (edge half): the edge's state dir on a full disk, then its cache database corrupt.

The edge's state dir (var/lib/kedge/edge: cache.db, outbox.db) is a small tmpfs mounted before
`kedge join` (CI runs as root; where mounting is refused the test skips with one line, CI=true fails).

1. Full disk: the tmpfs is filled to the last byte while a running pod is labelled and a new pod is
   created. The edge cannot commit them, so it does not ack them (commit before ack), says why once,
   and keeps running; the cloud keeps resending. Space returns → both land, nothing restarted.
2. Corrupt cache: the runtime is SIGKILLed, pages of cache.db overwritten, the runtime started again:
   it names the file, moves it aside, starts an empty cache with a new epoch (the cloud resends every
   object), keeps running (no crash loop) and adopts the pods' containers.

    pytest tests/e2e/faults/test_edge_disk.py -s
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.faults.harness import IMAGE, running_containers
from tests.fixtures import missing, require
from tests.fixtures.e2e import E2E, alive, start_e2e
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root
FULL = "database or disk is full"  # sqlite's SQLITE_FULL


@pytest.fixture
def env(tmp_path: Path) -> Iterator[E2E]:
    require("docker")
    require("kubectl")
    state = tmp_path / "edge" / "var" / "lib" / "kedge" / "edge"
    state.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(state)], capture_output=True)
    if done.returncode != 0:
        missing(  # the storage-layer injection: tests/edge/test_metastore.py (sqlite's max_page_count)
            f"mounting a tmpfs for the edge's state was refused: {done.stderr.decode().strip()}"
        )
    client = docker.from_env(timeout=60)
    teardown = None
    try:
        e2e, teardown = start_e2e(tmp_path, client)
        yield e2e
    finally:
        if teardown is not None:
            teardown()
        client.close()
        subprocess.run(["umount", "-l", str(state)], check=False)


def pod(e: E2E, name: str) -> None:
    doc = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"disk": "yes"}},
        "spec": {"nodeName": e.edge.node, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "36000"]}]},
    }  # fmt: skip
    e.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(doc))


def cached(e: E2E) -> dict[str, str]:
    """pod name → its `gen` label in the edge's cache (read-only, beside the running edge)."""
    path = e.edge.paths.state / "cache.db"
    with contextlib.suppress(sqlite3.Error):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT name, data FROM objects WHERE type='pod'").fetchall()
        finally:
            db.close()
        return {n: (json.loads(d).get("metadata", {}).get("labels") or {}).get("gen", "") for n, d in rows}
    return {}


def fill(state: Path) -> int:
    """Fill the filesystem under `state` to the last byte; the bytes written."""
    n = 0
    with contextlib.suppress(OSError), (state / "filler").open("ab") as f:
        while True:
            n += f.write(b"\0" * 65536)
            f.flush()
    return n


def log_text(e: E2E) -> str:
    logs = (e.edge.paths.log_file, e.edge.root / "edge-run.log")
    return "".join(p.read_text(errors="replace") for p in logs if p.exists())


def corrupt(db: Path) -> None:
    """Overwrite pages 2.. of the database with garbage (the header stays: sqlite opens it, then finds
    the damage), as a torn write on a failing disk would."""
    size = db.stat().st_size
    with db.open("r+b") as f:
        for off in range(4096, size, 8192):
            f.seek(off)
            f.write(os.urandom(1024))


@pytest.mark.timeout(300)
def test_full_then_corrupt_edge_state_loses_nothing(env: E2E) -> None:
    e, state = env, env.edge.paths.state
    pod(e, "steady")
    before = eventually(lambda: (c := running_containers(e.edge)).get("steady") and c, 90, "steady Running")
    pid = e.edge.pid()

    # 1. full disk
    filled = fill(state)
    e.cloud.kubectl("label", "pod", "steady", "gen=1", "--overwrite")
    pod(e, "fresh")
    said = eventually(lambda: FULL in (t := log_text(e)) and t, 60, "the edge to say its disk is full")
    time.sleep(5)  # the cloud resends every 5 s: at least one more refused attempt
    assert e.edge.pid() == pid and alive(pid), "the runtime must survive a full disk"
    (state / "filler").unlink()
    freed = time.monotonic()
    last: dict[str, bool] = {}

    def landed() -> bool:
        c, run = cached(e), running_containers(e.edge)
        last.update({"label steady": c.get("steady") == "1", "create fresh": "fresh" in c and "fresh" in run})
        return all(last.values())

    with contextlib.suppress(AssertionError):
        eventually(landed, 90, "the changes made while the disk was full", interval=0.5)
    full = {
        "scenario": "edge-state-disk-full",
        "filled_bytes": filled,
        "lost_api_updates": sum(1 for ok in last.values() if not ok),
        "lost_twin_values": None,
        "restarts_of_healthy_containers": int(running_containers(e.edge).get("steady") != before["steady"]),
        "runtime_restarts": int(e.edge.pid() != pid),
        "converge_seconds": round(time.monotonic() - freed, 1),
    }
    print(json.dumps(full, sort_keys=True), flush=True)
    error_lines = [line for line in said.splitlines() if FULL in line]
    assert full["lost_api_updates"] == 0 and full["restarts_of_healthy_containers"] == 0, (full, last)
    assert full["runtime_restarts"] == 0, full
    said_once = [line for line in error_lines if f"cache {state / 'cache.db'}: the disk is full" in line]
    assert said_once and f"free space on the filesystem of {state}" in said_once[0], error_lines[:5]
    assert "Traceback" not in said, "a full disk is said in words, not with a traceback"

    # 2. corrupt cache
    before = running_containers(e.edge)
    db = sqlite3.connect(state / "cache.db", timeout=10)  # everything into the main file, then the kill
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    e.edge.kill9()
    corrupt(state / "cache.db")
    e.edge.run_detached()
    restarted = time.monotonic()
    pid = e.edge.pid()
    want = {"steady": "1", "fresh": ""}
    with contextlib.suppress(AssertionError):
        eventually(lambda: cached(e) == want, 90, "the cache resent by the cloud", interval=0.5)
    aside = sorted(p.name for p in state.iterdir() if ".corrupt-" in p.name)
    text = log_text(e)
    bad = {
        "scenario": "edge-cache-corrupt",
        "moved_aside": aside[:1],
        "lost_api_updates": sum(1 for k, v in want.items() if cached(e).get(k) != v),
        "restarts_of_healthy_containers": sum(
            1 for n in ("steady", "fresh") if running_containers(e.edge).get(n) != before.get(n)
        ),
        "runtime_restarts": int(e.edge.pid() != pid),
        "converge_seconds": round(time.monotonic() - restarted, 1),
    }
    print(json.dumps(bad, sort_keys=True), flush=True)
    assert aside, "the corrupt database must be kept for inspection"
    assert f"cache {state / 'cache.db'} is corrupt" in text and "moved it to" in text, text[-3000:]
    assert bad["lost_api_updates"] == 0 and bad["restarts_of_healthy_containers"] == 0, bad
    time.sleep(3)
    assert bad["runtime_restarts"] == 0 and alive(pid) and e.edge.pid() == pid, "no crash loop"
    assert eventually(e.edge.connected, 30, "the edge connected")
