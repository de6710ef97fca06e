"""Durable, bounded queue of edge→cloud messages written while the cloud is unreachable.

Why sqlite: what the edge reports while offline (pod status, events, device readings) must survive a
restart and go out in order once the link is back (design.md §6). The queue is bounded in messages
and bytes. When full, room is made in this order, each step oldest first, and every drop is counted
by reason:

1. ``superseded`` — a status patch (podpatch, nodepatch, podstatus) for an object that has a newer
   status patch queued: the newer one carries the current state;
2. ``event`` — Kubernetes events, informative only;
3. ``oldest`` — anything else.

Keepalives are never queued (they only mean something live). A corrupt file is moved aside and its
messages counted as ``corrupt`` drops. Delivery is at least once: rows are
deleted after they were written to the socket, so a crash in between resends them.
sqlite3 blocks, so every call runs on a worker thread behind a lock (design.md §3).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from runtime.protocol import (
    OP_KEEPALIVE,
    RT_EVENT,
    RT_NODEPATCH,
    RT_PODPATCH,
    RT_PODSTATUS,
    MalformedMessage,
    Message,
    decode,
    encode_bytes,
    parse_resource,
)

log = logging.getLogger("kedge.edgehub")
T = TypeVar("T")
_STATUS_TYPES = frozenset({RT_PODPATCH, RT_NODEPATCH, RT_PODSTATUS})
DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,          -- status | event | other
    resource TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox(kind, resource, id);
"""
_TOTALS = "SELECT count(*), coalesce(sum(size), 0) FROM outbox"


def kind_of(msg: Message) -> str:
    r = parse_resource(msg.resource)
    typ = r.type if r is not None else ""
    if typ in _STATUS_TYPES:
        return "status"
    return "event" if typ == RT_EVENT else "other"


class Outbox:
    """``put`` / ``peek`` / ``delete`` over one sqlite file; ``dropped`` counts losses by reason."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.path = str(path)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.dropped = dict.fromkeys(("superseded", "event", "oldest", "unreadable", "corrupt"), 0)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._count = 0
        self._bytes = 0

    # --- blocking core (worker thread) ---

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        self._count, self._bytes = db.execute(_TOTALS).fetchone()
        self._db = db

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._open()
        assert self._db is not None
        return self._db

    def _open_locked(self) -> None:
        """Open under the lock like every other use: a put racing the open must not see its count
        overwritten by the opener's total read before the put's row was written."""
        with self._lock:
            self._conn()

    def _put(self, msg: Message) -> None:
        data = encode_bytes(msg)
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                while self._count > 0 and (
                    self._count + 1 > self.max_messages or self._bytes + len(data) > self.max_bytes
                ):
                    self._drop_one(db)
                db.execute(
                    "INSERT INTO outbox(kind, resource, size, data) VALUES (?, ?, ?, ?)",
                    (kind_of(msg), msg.resource, len(data), data),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # a refused COMMIT (disk full) was rolled back already
                    db.execute("ROLLBACK")
                self._count, self._bytes = db.execute(_TOTALS).fetchone()
                raise
            self._count += 1
            self._bytes += len(data)

    def _drop_one(self, db: sqlite3.Connection) -> None:
        row = db.execute(
            "SELECT a.id, a.size FROM outbox a WHERE a.kind = 'status' AND EXISTS "
            "(SELECT 1 FROM outbox b WHERE b.kind = 'status' AND b.resource = a.resource AND b.id > a.id) "
            "ORDER BY a.id LIMIT 1"
        ).fetchone()
        reason = "superseded"
        if row is None:
            row = db.execute(
                "SELECT id, size FROM outbox WHERE kind = 'event' ORDER BY id LIMIT 1"
            ).fetchone()
            reason = "event"
        if row is None:
            row = db.execute("SELECT id, size FROM outbox ORDER BY id LIMIT 1").fetchone()
            reason = "oldest"
        db.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
        self._count -= 1
        self._bytes -= row[1]
        self.dropped[reason] += 1

    def _peek(self, n: int) -> list[tuple[int, Message]]:
        with self._lock:
            rows = self._conn().execute("SELECT id, data FROM outbox ORDER BY id LIMIT ?", (n,)).fetchall()
        out: list[tuple[int, Message]] = []
        bad: list[int] = []
        for rid, data in rows:
            try:
                out.append((rid, decode(data, limit=max(len(data), 1))))
            except MalformedMessage:
                bad.append(rid)
        if bad:
            self.dropped["unreadable"] += len(bad)
            self._delete(bad)
        return out

    def _delete(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            db = self._conn()
            marks = ",".join("?" * len(ids))
            db.execute("BEGIN IMMEDIATE")
            size = db.execute(
                f"SELECT count(*), coalesce(sum(size), 0) FROM outbox WHERE id IN ({marks})", ids
            ).fetchone()
            db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids)
            db.execute("COMMIT")
            self._count -= size[0]
            self._bytes -= size[1]

    def _close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; a corrupt database file is moved aside (its messages counted as dropped) and a
        fresh one started, so a damaged disk never turns into a reconnect loop."""
        try:
            return fn()
        except sqlite3.DatabaseError as exc:
            if self.path == ":memory:":
                raise
            with self._lock:
                lost = self._count
                if self._db is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.close()
                    self._db = None
                aside = f"{self.path}.corrupt-{int(time.time())}"
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.replace(self.path + suffix, aside + suffix)
                self.dropped["corrupt"] += lost
                self._count = self._bytes = 0
            log.error(
                "outbox %s is unreadable (%s): moved aside to %s, %d queued message(s) lost",
                self.path,
                exc,
                aside,
                lost,
            )
            return fn()

    # --- async API ---

    async def open(self) -> None:
        await asyncio.to_thread(self._guarded, self._open_locked)

    async def put(self, msg: Message) -> None:
        """Append (keepalives are ignored), making room as the module docstring says."""
        if msg.operation == OP_KEEPALIVE:
            return
        await asyncio.to_thread(self._guarded, lambda: self._put(msg))

    async def peek(self, n: int = 100) -> list[tuple[int, Message]]:
        """The oldest ``n`` messages with their row ids, in order; unreadable rows are dropped."""
        return await asyncio.to_thread(self._guarded, lambda: self._peek(n))

    async def delete(self, ids: list[int]) -> None:
        await asyncio.to_thread(self._guarded, lambda: self._delete(ids))

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        return self._bytes
