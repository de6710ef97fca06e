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
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

Row = tuple[str, str, str, bytes | None]  # (resource key, namespace, name, raw JSON or None=delete)

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
        self._q: queue.SimpleQueue[tuple[list[Row], int, Callable[[], None]] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

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

    def submit(self, rows: list[Row], rv: int, done: Callable[[], None]) -> None:
        """Queue rows; `done` runs on the loop after their commit (in submission order)."""
        self._q.put((rows, rv, done))

    def _run(self) -> None:
        assert self._loop is not None
        conn, q, wake = self._conn, self._q, self._loop.call_soon_threadsafe
        while True:
            item = q.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while not q.empty():  # one consumer: what is queued now stays there
                nxt = q.get_nowait()
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            rows = item[0]
            if len(batch) == 1 and len(rows) == 1 and rows[0][3] is not None:
                conn.execute(_PUT, rows[0])  # autocommit: one statement, one transaction
            else:
                self._write(batch)
            wake(_run_all, [cb for _, _, cb in batch])
            if stop:
                return

    def _write(self, batch: list[tuple[list[Row], int, Callable[[], None]]]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        top, deleted = 0, False
        for rows, rv, _ in batch:
            top = max(top, rv)
            for res, ns, name, raw in rows:
                if raw is None:
                    deleted = True
                    conn.execute(_DEL, (res, ns, name))
                else:
                    conn.execute(_PUT, (res, ns, name, raw))
        if deleted:
            conn.execute(_RV, (top,))
        conn.execute("COMMIT")

    def close(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout=10)
        self._conn.close()


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for cb in callbacks:
        cb()
