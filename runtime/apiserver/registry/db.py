"""sqlite (WAL) persistence on one writer thread, batching whatever writes are queued into one commit.

The event loop never touches sqlite: it enqueues rows and awaits a future that resolves once the
batch holding them has committed. Callbacks run on the loop in commit order, which is resourceVersion
order, so the store can emit watch events from them. synchronous=NORMAL survives a killed process
(the commit has reached the OS); `fsync=True` (synchronous=FULL) also survives power loss at ~1.5 ms a
commit on this machine.

Why the commit is this lean (a create waits for it): the file is opened in exclusive locking mode
(one server per data dir; no per-transaction file locks or shared-memory index), objects live in a
rowid table (rows of a few KB split WITHOUT ROWID leaves), and the last resourceVersion is written
only by batches that delete — every other handed-out version is inside a stored object, so `load`
takes the larger of the two. A single-row batch is one autocommit statement. Measured standalone:
≈ 30 µs a commit instead of ≈ 75 µs.

A commit that fails (disk full, I/O error) never ends the thread: the batch's `failed` callbacks run
on the loop with the error, and every write queued behind it is refused too (each was computed on
memory holding the failed one) until the store, having undone them in memory, calls `resume` with
the last resourceVersion it handed out: the next commit stores it, so a restart never hands out again
a version a client saw in a list. While
writes fail, `error` says why (the /readyz `etcd` check); an idle thread retries a tiny write every
second so readiness comes back when space returns, without waiting for a client's write.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Row = tuple[str, str, str, bytes | None]  # (resource key, namespace, name, raw JSON or None=delete)
Done = Callable[[], None]
Failed = Callable[[Exception], None]
Item = tuple[list[Row], int, Done, Failed]
RETRY = 1.0  # seconds between probe writes while the disk refuses

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (res TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL,
    raw BLOB NOT NULL, UNIQUE (res, ns, name));
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""
# Data dirs written before the rowid table: their rows move over once, in one transaction.
_MIGRATE = """
BEGIN;
INSERT OR REPLACE INTO kv SELECT res, ns, name, raw FROM objects;
DROP TABLE objects;
COMMIT;
"""
_PUT = "INSERT OR REPLACE INTO kv VALUES (?,?,?,?)"
_DEL = "DELETE FROM kv WHERE res=? AND ns=? AND name=?"
_RV = "INSERT OR REPLACE INTO meta VALUES ('rv', ?)"
_PROBE = "INSERT OR REPLACE INTO meta VALUES ('writable', 1)"


class Database:
    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._conn.executescript(_SCHEMA)
        old = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='objects'"
        if self._conn.execute(old).fetchone():
            self._conn.executescript(_MIGRATE)
        path.chmod(0o600)
        self._q: queue.SimpleQueue[Item | int | None] = queue.SimpleQueue()  # int: resume marker
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # why the last write failed; None once one succeeds again
        self._refusing = False  # thread only: a batch failed and the store has not resumed yet
        self._owed_rv = 0  # thread only: a resourceVersion handed out by refused writes, to store

    def load(self) -> tuple[int, list[Row]]:
        """Everything stored, and the last resourceVersion a delete handed out (read before the thread
        starts); the caller takes the larger of it and the stored objects' own versions."""
        cur = self._conn.execute("SELECT v FROM meta WHERE k = 'rv'")
        row = cur.fetchone()
        rv = int(row[0]) if row else 0
        rows: list[Row] = [
            (str(r), str(n), str(m), bytes(b))
            for r, n, m, b in self._conn.execute("SELECT res, ns, name, raw FROM kv")
        ]
        return rv, rows

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="apiserver-sqlite", daemon=True)
        self._thread.start()

    def submit(self, rows: list[Row], rv: int, done: Done, failed: Failed) -> None:
        """Queue rows; `done` runs on the loop after their commit, `failed(exc)` if it failed (in
        submission order)."""
        self._q.put((rows, rv, done, failed))

    def resume(self, rv: int) -> None:
        """The store undid every write queued so far (and had handed out versions up to `rv`): what is
        submitted from now on is written again."""
        self._q.put(rv)

    def _run(self) -> None:
        assert self._loop is not None
        q, wake = self._q, self._loop.call_soon_threadsafe
        while True:
            try:
                item = q.get(timeout=RETRY) if self.error is not None else q.get()
            except queue.Empty:
                self._probe()
                continue
            batch: list[Item] = []
            stop = False
            while True:  # one consumer: what is queued now stays there
                if item is None:
                    stop = True
                    break
                if isinstance(item, int):  # resume marker
                    if batch:  # refused items before it, or a batch to write first
                        self._flush(batch, wake)
                        batch = []
                    self._refusing = False
                    self._owed_rv = max(self._owed_rv, item)
                else:
                    batch.append(item)
                if q.empty():
                    break
                item = q.get_nowait()
            if batch:
                self._flush(batch, wake)
            if stop:
                return

    def _flush(self, batch: list[Item], wake: Callable[..., object]) -> None:
        if self._refusing:
            wake(_fail_all, [f for *_, f in batch], _Refused("an earlier write in its batch failed"))
            return
        try:
            rows = batch[0][0]
            if len(batch) == 1 and len(rows) == 1 and rows[0][3] is not None and not self._owed_rv:
                self._conn.execute(_PUT, rows[0])  # autocommit: one statement, one transaction
            else:
                self._write(batch)
        except Exception as exc:  # disk full, I/O error: nothing of the batch is stored
            self._rollback()
            self._refusing = True
            if self.error is None:
                log.error("apiserver storage: writes fail: %s", exc)
            self.error = f"writing {self.path.name} failed: {exc}"
            wake(_fail_all, [f for *_, f in batch], exc)
            return
        if self.error is not None:
            log.warning("apiserver storage: writes succeed again")
            self.error = None
        wake(_run_all, [cb for _, _, cb, _ in batch])

    def _probe(self) -> None:
        try:
            if self._owed_rv:
                self._conn.execute(_RV, (self._owed_rv,))
            else:
                self._conn.execute(_PROBE)
            self._owed_rv = 0
        except Exception as exc:
            self._rollback()
            self.error = f"writing {self.path.name} failed: {exc}"
            return
        log.warning("apiserver storage: writes succeed again")
        self.error = None

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # sqlite rolled back itself

    def _write(self, batch: list[Item]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        top, deleted = 0, False
        for rows, rv, _, _ in batch:
            top = max(top, rv)
            for res, ns, name, raw in rows:
                if raw is None:
                    deleted = True
                    conn.execute(_DEL, (res, ns, name))
                else:
                    conn.execute(_PUT, (res, ns, name, raw))
        if deleted or self._owed_rv:
            conn.execute(_RV, (max(top, self._owed_rv),))
        conn.execute("COMMIT")
        self._owed_rv = 0

    def close(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout=10)
        self._conn.close()


class _Refused(Exception):
    """A write queued behind a failed one: refused unwritten (the store undoes it with the failed one)."""


def _run_all(callbacks: list[Done]) -> None:
    for cb in callbacks:
        cb()


def _fail_all(callbacks: list[Failed], exc: Exception) -> None:
    for cb in callbacks:
        cb(exc)
