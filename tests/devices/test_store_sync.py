"""The twin store's durability: an answered update is in the WAL (handed to the OS) before the device
gets its answer — a SIGKILLed edge loses none — and the checkpointer makes it durable in the database
file within ``sync_interval`` (what a power cut could lose), off the answer path."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from runtime.edge.devices.store import TwinStore
from tests.fixtures.wait import eventually_async

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, sys
from pathlib import Path
from runtime.edge.devices.store import TwinStore

async def main() -> None:
    store = await TwinStore.open(Path(sys.argv[1]), sync_interval=30.0)  # no sync before the kill
    for i in range(50):
        await store.write(store.op_put_twin(f"default/d{i}", {"temperature": {"actual": {"value": str(i)}}}))
    print("answered", flush=True)
    await asyncio.sleep(60)  # idle until the test kills it

asyncio.run(main())
"""


def _twins(db: Path) -> dict[str, bytes]:
    con = sqlite3.connect(db)
    try:
        return {d: data for d, data in con.execute("SELECT device, data FROM twins")}
    finally:
        con.close()


def test_a_killed_edge_keeps_every_answered_update(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "answered"
        child.send_signal(signal.SIGKILL)  # no close, no checkpoint
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert len(_twins(db)) == 50  # the WAL has them: the next open recovers them


async def test_answered_updates_reach_the_database_file_within_the_sync_interval(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    store = await TwinStore.open(db, sync_interval=0.05)
    try:
        for i in range(20):
            await store.write(store.op_put_twin(f"default/d{i}", {"t": {"actual": {"value": str(i)}}}))
        await eventually_async(lambda: store.syncs, within=5, what="a sync")
        assert store.syncs >= 1 and store.read_stats()["syncs"] == store.syncs
        alone = tmp_path / "copy.db"  # the database file without its WAL: what is durable there
        shutil.copy(db, alone)
        assert len(_twins(alone)) == 20
        idle = store.syncs
        await asyncio.sleep(0.3)  # the thing under test: six sync intervals pass idle
        assert store.syncs == idle  # nothing committed, nothing to sync
    finally:
        await store.close()
