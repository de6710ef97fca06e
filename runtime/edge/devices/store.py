"""The twin store: twins, device states and the queue of reports to the cloud, in the edge's sqlite cache.

Why in the cache file: one file holds what the edge knows (objects and twins) and a restart restores
both before the cloud is back. Its own tables and connection; reads are served from memory (``twins``
is loaded at open), writes go through ``write()``, which commits on a worker thread and returns
after the commit: writes queued while a commit runs are committed together (group commit), so a
burst of device updates costs one fsync per batch, not per message (WAL, synchronous=FULL).

Reports (edge→cloud) are rows in ``reports``, written in the same transaction as the twin they
describe — stored first. Coalescing: a report of a property that has an unsent row opened less than
``window`` seconds ago replaces that row's value and counts +1 in ``coalesced``; otherwise a new row
starts. So every window's last value is kept, in order. The uplink takes rows in ``seq`` order and
deletes them after the hub accepted them (at least once; the cloud deduplicates by event id and
``actual_version``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("kedge.edge.devices")

SCHEMA = """
CREATE TABLE IF NOT EXISTS twins (device TEXT NOT NULL, prop TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (device, prop));
CREATE TABLE IF NOT EXISTS device_state (device TEXT PRIMARY KEY, state TEXT NOT NULL,
    last_online TEXT NOT NULL DEFAULT '', updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL,
    prop TEXT NOT NULL, event_id TEXT NOT NULL, data BLOB NOT NULL, opened REAL NOT NULL,
    coalesced INTEGER NOT NULL DEFAULT 0, taken INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS reports_open ON reports(device, prop, taken);
"""
Op = Callable[[sqlite3.Connection], None]


class TwinStore:
    def __init__(self, path: Path, window: float = 0.5) -> None:
        self.path, self.window = path, window
        self.twins: dict[str, dict[str, dict[str, Any]]] = {}  # device id -> prop -> state
        self.states: dict[str, dict[str, Any]] = {}  # device id -> {state, lastOnlineTime, updated}
        self.pending_reports = 0
        self.coalesced_total = 0
        self.commits = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twinstore")
        self._db: sqlite3.Connection | None = None
        self._queue: list[tuple[Op, asyncio.Future[None]]] = []
        self._flushing = False
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    async def open(cls, path: Path, window: float = 0.5) -> TwinStore:
        store = cls(path, window)
        await asyncio.get_running_loop().run_in_executor(store._pool, store._open)
        return store

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        self._db = db
        for device, prop, data in db.execute("SELECT device, prop, data FROM twins"):
            self.twins.setdefault(device, {})[prop] = orjson.loads(data)
        for device, state, last, updated in db.execute("SELECT * FROM device_state"):
            self.states[device] = {"state": state, "lastOnlineTime": last, "updated": updated}
        self.pending_reports = db.execute("SELECT count(*) FROM reports").fetchone()[0]

    async def close(self) -> None:
        await self._idle.wait()
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------ group commit

    async def write(self, op: Op) -> None:
        """Run ``op`` inside a transaction; returns once it is committed (with whatever else queued)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((op, fut))
        if not self._flushing:
            self._flushing = True
            self._idle.clear()
            asyncio.get_running_loop().create_task(self._flush())
        await fut

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await loop.run_in_executor(self._pool, self._commit, [op for op, _ in batch])
                except Exception as exc:
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._flushing = False
            self._idle.set()

    @staticmethod
    def chain(ops: Sequence[Op]) -> Op:
        """Several operations as one (they commit together)."""

        def op(db: sqlite3.Connection) -> None:
            for each in ops:
                each(db)

        return op

    def _commit(self, ops: list[Op]) -> None:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                op(db)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.commits += 1

    # ------------------------------------------------------------ operations (run on the thread)

    def op_put_twin(self, device: str, props: dict[str, dict[str, Any]]) -> Op:
        rows = [(device, p, orjson.dumps(s)) for p, s in props.items()]

        def op(db: sqlite3.Connection) -> None:
            db.executemany("INSERT OR REPLACE INTO twins VALUES (?,?,?)", rows)

        return op

    def op_drop_device(self, device: str) -> Op:
        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM twins WHERE device=?", (device,))
            db.execute("DELETE FROM device_state WHERE device=?", (device,))

        return op

    def op_put_state(self, device: str, state: str, last_online: str) -> Op:
        row = (device, state, last_online, time.time())

        def op(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO device_state VALUES (?,?,?,?)", row)

        return op

    def op_report(self, device: str, prop: str, event_id: str, body: dict[str, Any], now: float) -> Op:
        """Queue a report (prop ``""`` = device state); coalesced into an open row of the window."""
        data = orjson.dumps(body)

        def op(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT seq, opened FROM reports WHERE device=? AND prop=? AND taken=0 "
                "ORDER BY seq DESC LIMIT 1",
                (device, prop),
            ).fetchone()
            if row is not None and now - row[1] < self.window:
                db.execute("UPDATE reports SET data=?, coalesced=coalesced+1 WHERE seq=?", (data, row[0]))
                self.coalesced_total += 1
            else:
                db.execute(
                    "INSERT INTO reports (device, prop, event_id, data, opened) VALUES (?,?,?,?,?)",
                    (device, prop, event_id, data, now),
                )
                self.pending_reports += 1

        return op

    # ------------------------------------------------------------ uplink side

    def _take(self, limit: int) -> list[tuple[int, str, str, str, Any, int]]:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(
                "SELECT seq, device, prop, event_id, data, coalesced FROM reports ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            if rows:
                db.execute("UPDATE reports SET taken=1 WHERE seq<=?", (rows[-1][0],))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return [(s, d, p, e, orjson.loads(b), c) for s, d, p, e, b, c in rows]

    async def take_reports(self, limit: int = 500) -> list[tuple[int, str, str, str, Any, int]]:
        """Oldest reports, closed to coalescing: (seq, device, prop, event_id, body, coalesced)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._take, limit)

    async def done_reports(self, upto: int) -> None:
        def op(db: sqlite3.Connection) -> None:
            n = db.execute("DELETE FROM reports WHERE seq<=? AND taken=1", (upto,)).rowcount
            self.pending_reports = max(0, self.pending_reports - n)

        await self.write(op)

    def read_stats(self) -> dict[str, Any]:
        return {
            "pendingReports": self.pending_reports,
            "coalesced": self.coalesced_total,
            "commits": self.commits,
        }
