"""The sqlite store on a real file: what a restart reads back (objects, the last resourceVersion,
data dirs written by the earlier schema), and that one data dir has one writer."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runtime.apiserver.registry.db import Database
from runtime.apiserver.registry.storage import Store


def _cm(name: str, rv: int) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "d", "resourceVersion": str(rv)}}


async def _write(path: Path, changes: list[tuple[str, str]]) -> int:
    """Apply (type, name) changes one commit each; the last resourceVersion handed out."""
    store = Store(Database(path))
    store.load()
    store.start(asyncio.get_running_loop())
    try:
        for typ, name in changes:
            rv = store.next_rv()
            await store.commit([(typ, "/configmaps", ("d", name), _cm(name, rv))])
        return store.rv
    finally:
        store.close()


def _reopen(path: Path) -> Store:
    store = Store(Database(path))
    store.load()
    return store


async def test_restart_keeps_objects_and_the_version_of_a_final_delete(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    # the newest object is deleted last: no stored object carries the last version any more
    last = await _write(path, [("ADDED", "a"), ("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")])
    store = _reopen(path)
    try:
        assert store.rv == last == 4
        assert sorted(store.data["/configmaps"]) == [("d", "a")]
        assert store.data["/configmaps"][("d", "a")].rv == 3
    finally:
        store.close()
    # the version of a later write (no delete) comes from the object itself
    assert await _write(path, [("ADDED", "c")]) == 5
    store = _reopen(path)
    try:
        assert store.rv == 5
    finally:
        store.close()


async def test_batches_of_queued_writes_commit_together_in_order(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(Database(path))
    store.load()
    store.start(asyncio.get_running_loop())
    seen: list[int] = []
    store.listeners.append(lambda ev: seen.append(ev.rv))
    try:
        futs = []
        for i in range(50):
            rv = store.next_rv()
            futs.append(store.commit([("ADDED", "/configmaps", ("d", f"c{i}"), _cm(f"c{i}", rv))]))
        await asyncio.gather(*futs)
        assert seen == list(range(1, 51))
    finally:
        store.close()
    store = _reopen(path)
    try:
        assert len(store.data["/configmaps"]) == 50 and store.rv == 50
    finally:
        store.close()


def test_data_dir_of_the_earlier_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(str(path), isolation_level=None)
    old.executescript(
        "CREATE TABLE objects (res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, raw BLOB NOT NULL,"
        " PRIMARY KEY (res, ns, name)) WITHOUT ROWID;"
        "CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
    )
    old.execute(
        "INSERT INTO objects VALUES ('/configmaps', 'd', 'a', ?)", (b'{"metadata":{"resourceVersion":"7"}}',)
    )
    old.execute("INSERT INTO meta VALUES ('rv', 9)")
    old.close()
    store = _reopen(path)
    try:
        assert store.rv == 9
        assert store.data["/configmaps"][("d", "a")].rv == 7
    finally:
        store.close()
    tables = {
        r[0] for r in sqlite3.connect(str(path)).execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert "objects" not in tables and "kv" in tables


def test_a_second_server_cannot_share_the_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Database(path)
    try:
        first.load()  # exclusive locking mode: the lock is taken at the first read and kept
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            Database(path).load()
    finally:
        first.close()
