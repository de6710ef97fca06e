"""The twin store's group commit: the writes of one loop pass commit together, one commit is in flight
and what queued meanwhile is the next; a failing transaction fails its own writers only, a cancelled
writer does not hold up the others, and a write after close fails instead of waiting forever."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from runtime.edge.devices.store import Op, TwinStore


def put(store: TwinStore, device: str, value: str) -> Op:
    return store.op_put_twin(f"default/{device}", {"t": {"actual": {"value": value}}})


async def test_one_pass_commits_together_and_what_queues_meanwhile_is_the_next(tmp_path: Path) -> None:
    store = await TwinStore.open(tmp_path / "cache.db", sync_interval=0.1)
    try:
        commits = store.commits
        await asyncio.gather(*(store.write(put(store, f"d{i}", "1")) for i in range(10)))
        assert store.commits == commits + 1  # ten writers of one pass, one transaction

        gate = threading.Event()

        def held(db: sqlite3.Connection) -> None:
            gate.wait(5)  # the store's thread is busy with this commit …

        first = asyncio.ensure_future(store.write(held))
        await asyncio.sleep(0.05)
        later = [asyncio.ensure_future(store.write(put(store, f"e{i}", "2"))) for i in range(5)]
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in later)  # … so these wait, queued
        commits = store.commits
        gate.set()
        await asyncio.gather(first, *later)
        assert store.commits == commits + 2  # the held one, then the five together
    finally:
        await store.close()


async def test_a_failed_transaction_fails_its_writers_only(tmp_path: Path) -> None:
    store = await TwinStore.open(tmp_path / "cache.db", sync_interval=0.1)
    try:

        def broken(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO no_such_table VALUES (1)")

        bad = asyncio.ensure_future(store.write(broken))
        good_same_pass = asyncio.ensure_future(store.write(put(store, "d1", "1")))
        results = await asyncio.gather(bad, good_same_pass, return_exceptions=True)
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)  # one transaction: both
        await store.write(put(store, "d2", "2"))  # the next transaction commits
        rows = await asyncio.to_thread(
            lambda: sqlite3.connect(tmp_path / "cache.db").execute("SELECT device FROM twins").fetchall()
        )
        assert rows == [("default/d2",)]  # the failed one rolled back entirely
    finally:
        await store.close()


async def test_a_cancelled_writer_does_not_hold_up_the_others(tmp_path: Path) -> None:
    store = await TwinStore.open(tmp_path / "cache.db", sync_interval=0.1)
    try:
        gone = asyncio.ensure_future(store.write(put(store, "d1", "1")))
        kept = asyncio.ensure_future(store.write(put(store, "d2", "2")))
        await asyncio.sleep(0)
        gone.cancel()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await gone
        await asyncio.wait_for(store.write(put(store, "d3", "3")), 5)  # the store still commits
    finally:
        await store.close()


async def test_a_write_after_close_fails_instead_of_waiting(tmp_path: Path) -> None:
    store = await TwinStore.open(tmp_path / "cache.db", sync_interval=0.1)
    await store.close()
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(store.write(put(store, "d1", "1")), 5)
