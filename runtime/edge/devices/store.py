"""The twin store: twins, device states and the queue of reports to the cloud, in the edge's sqlite cache.

Why in the cache file: one file holds what the edge knows (objects and twins) and a restart restores
both before the cloud is back. Its own tables and connection; reads are served from memory (``twins``
is loaded at open), writes go through ``write()``, which commits on a worker thread and returns
after the commit: writes queued while a commit runs are committed together (group commit).

Durability (``sync_interval``, ``mqtt.twin_sync_seconds``): a commit is appended to the WAL and
handed to the OS before the device gets its answer, so a killed edge never loses an answered
update; the fsync is not on that path — a checkpointer (its own connection and thread) syncs the
WAL and copies it into the database every ``sync_interval`` seconds when something was committed,
and the writer never checkpoints inline. So an OS crash or a power cut loses at most the last
interval's answered updates (the file stays consistent) — PostgreSQL's ``synchronous_commit=off``
with its WAL writer — and a slow fsync, or a checkpoint, no longer delays an answer (profiled:
the fsync of each commit was the tail of publish → result, p99 8 to 11 ms on a loaded machine, and
the inline checkpoint every ~1,000 pages a stall). ``sync_interval`` 0: fsync in every commit
(synchronous=FULL), checkpoints inline, as before.

Reports (edge→cloud) are rows in ``reports``, written in the same transaction as the twin they
describe — stored first. Coalescing: a report of a property whose newest row is not yet taken by the
uplink replaces that row's value and counts +1 in ``coalesced`` when the row opened less than
``window`` seconds ago, or when it opened while the link is up (``link_up_since``): such a row's
window lasts until the uplink takes it, which its pace may delay (so a busy link folds values instead
of queueing them, and the lag stays ≤ one round of the devices at the pace). Rows of an outage close
after ``window`` seconds: the outage's history is kept. Otherwise a new row starts. So the last value
of every window is kept, in order. The uplink takes rows in ``seq`` order (``take_reports`` marks them
taken: closed to coalescing) and deletes them after the hub accepted them (at least once; the cloud
deduplicates by event id and ``actual_version``).
"""

from __future__ import annotations

import asyncio
import contextlib
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
Report = tuple[int, str, str, str, Any, int]  # (seq, device, prop, event_id, body, coalesced)
Fit = Callable[[list[tuple[str, str]]], int]  # (device, prop) of the oldest rows -> how many to take


class TwinStore:
    def __init__(self, path: Path, window: float = 0.5, sync_interval: float = 0.0) -> None:
        self.path, self.window, self.sync_interval = path, window, sync_interval
        self.syncs = 0
        self._synced_at = 0  # self.commits at the last sync
        self._syncer: asyncio.Task[None] | None = None
        self._sync_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twinsync")
        self._sync_db: sqlite3.Connection | None = None
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
        # wall clock since which the link to the cloud is up, None while it is down (set by the wiring)
        self.link_up_since: Callable[[], float | None] = lambda: None

    @classmethod
    async def open(cls, path: Path, window: float = 0.5, sync_interval: float = 0.0) -> TwinStore:
        store = cls(path, window, sync_interval)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(store._pool, store._open)
        if sync_interval > 0:
            await loop.run_in_executor(store._sync_pool, store._open_sync)
            store._syncer = loop.create_task(store._sync_loop(), name="twinstore-sync")
        return store

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        if self.sync_interval > 0:
            db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: the commit reaches the OS, no fsync
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer does it, off the answer path
        else:
            db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        self._db = db
        for device, prop, data in db.execute("SELECT device, prop, data FROM twins"):
            self.twins.setdefault(device, {})[prop] = orjson.loads(data)
        for device, state, last, updated in db.execute("SELECT * FROM device_state"):
            self.states[device] = {"state": state, "lastOnlineTime": last, "updated": updated}
        self.pending_reports = db.execute("SELECT count(*) FROM reports").fetchone()[0]

    def _open_sync(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA synchronous=NORMAL")  # a checkpoint syncs the WAL, then the database
        self._sync_db = db

    def _checkpoint(self) -> None:
        assert self._sync_db is not None
        self._sync_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    async def sync(self) -> None:
        """Make what is committed durable now (fsync the WAL, copy it into the database)."""
        commits = self.commits
        await asyncio.get_running_loop().run_in_executor(self._sync_pool, self._checkpoint)
        self._synced_at = commits
        self.syncs += 1

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            if self.commits != self._synced_at:
                try:
                    await self.sync()
                except sqlite3.Error as exc:  # e.g. the disk is full: said, retried next interval
                    log.warning("twin store: checkpoint failed: %s", exc)

    async def close(self) -> None:
        await self._idle.wait()
        loop = asyncio.get_running_loop()
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
            self._syncer = None
        if self._sync_db is not None:
            await self.sync()  # what was answered is on disk before the edge stops
            await loop.run_in_executor(self._sync_pool, self._sync_db.close)
            self._sync_db = None
        if self._db is not None:
            await loop.run_in_executor(self._pool, self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)
        self._sync_pool.shutdown(wait=True)

    # ------------------------------------------------------------ group commit

    async def write(self, op: Op) -> None:
        """Run ``op`` inside a transaction; returns once it is committed (with whatever else queued)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.append((op, fut))
        if not self._flushing:
            self._flushing = True
            self._idle.clear()
            loop.call_soon(self._submit, loop)  # on the next pass: this pass's writes commit together
        await fut

    # One commit in flight; what queued meanwhile is the next one. The hand-off is a callback each way
    # (the store's thread tells the loop with ``call_soon_threadsafe``), not a task awaiting
    # ``run_in_executor``: that cost the loop about twice the CPU per commit (asyncio's future chained
    # to the executor's) and two more loop passes before the writers woke (docs/benchmarks.md).

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._queue = self._queue, []
        try:
            self._pool.submit(self._commit_batch, loop, batch)
        except RuntimeError as exc:  # the store is closed: the writers get the error
            self._committed(loop, batch, exc)

    def _commit_batch(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Op, asyncio.Future[None]]]
    ) -> None:
        """On the store's thread: commit ``batch`` and tell the loop how it went."""
        error: BaseException | None = None
        try:
            self._commit([op for op, _ in batch])
        except BaseException as exc:  # handed to the writers, as run_in_executor would
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(self._committed, loop, batch, error)

    def _committed(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Op, asyncio.Future[None]]],
        error: BaseException | None,
    ) -> None:
        for _, fut in batch:
            if fut.done():  # the writer was cancelled
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)
        if self._queue:
            self._submit(loop)
        else:
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
            if db.in_transaction:  # a refused COMMIT (disk full) was rolled back already
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
        """Queue a report (prop ``""`` = device state); coalesced into the property's open row."""
        data = orjson.dumps(body)
        up = self.link_up_since()  # read on the loop, when the report is made

        def op(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT seq, opened FROM reports WHERE device=? AND prop=? AND taken=0 "
                "ORDER BY seq DESC LIMIT 1",
                (device, prop),
            ).fetchone()
            if row is not None and (now - row[1] < self.window or (up is not None and row[1] >= up)):
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

    def _take(self, limit: int, fit: Fit | None) -> list[Report]:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = db.execute(
                "SELECT seq, device, prop, event_id, data, coalesced FROM reports ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            if fit is not None:
                rows = rows[: fit([(r[1], r[2]) for r in rows])]
            if rows:
                db.execute("UPDATE reports SET taken=1 WHERE seq<=?", (rows[-1][0],))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a refused COMMIT (disk full) was rolled back already
                db.execute("ROLLBACK")
            raise
        return [(s, d, p, e, orjson.loads(b), c) for s, d, p, e, b, c in rows]

    async def take_reports(self, limit: int = 500, fit: Fit | None = None) -> list[Report]:
        """The oldest reports, closed to coalescing: at most ``limit``, or the first ``fit(rows)`` of
        them (decided on the store's thread, so no value can fold into a row between read and take)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._take, limit, fit)

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
            "syncs": self.syncs,
        }
