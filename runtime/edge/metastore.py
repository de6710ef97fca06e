"""The edge's offline metadata cache: every object the cloud sent, in sqlite (WAL), on one thread.

Why sqlite in WAL with synchronous=FULL: an object is acked to the cloud only after its row is
committed, and the cloud never resends an acked object — so a commit must survive kill -9 and power
loss. Rows are keyed by (type, namespace, name) and carry the UID: an object recreated under the same
name (new UID) is a delete plus an insert, reported as such so the pod manager stops the old pod.
A database that does not open or fails ``quick_check`` is moved aside with one clear log line and a
fresh one starts under a NEW cache epoch, which makes the cloud forget its ack state and resend
everything (design.md §4) — never a crash loop. sqlite3 blocks, so every call runs on one dedicated
worker thread (design.md §3).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from runtime.errors import StorageFull
from runtime.protocol import OP_DELETE, OP_INSERT, OP_UPDATE, Message, parse_resource

log = logging.getLogger("kedge.edge.metastore")

SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    type TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    uid TEXT NOT NULL DEFAULT '', rv TEXT NOT NULL DEFAULT '', data BLOB NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (type, namespace, name)
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
CACHED_OPS = (OP_INSERT, OP_UPDATE, OP_DELETE)


@dataclass(frozen=True)
class Change:
    """What ``apply`` did: ``op`` is insert, update, delete, replace (UID changed) or ignored."""

    op: str
    type: str
    namespace: str
    name: str
    obj: dict[str, Any] | None = None
    old_uid: str = ""


def _uid_rv(obj: Any) -> tuple[str, str]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return "", ""
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


class MetaStore:
    """Open with ``await MetaStore.open(path)``; ``apply(msg)`` commits before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.epoch = ""
        self.recovered_from: Path | None = None  # where a corrupt database was moved, if it was
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metastore")
        self._db: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path | str) -> MetaStore:
        store = cls(Path(path))
        await store._call(store._open)
        return store

    async def close(self) -> None:
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # ------------------------------------------------------------ thread side

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        try:
            db = self._connect()
            row = db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                db.close()
                raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'}")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
            db = self._connect()
            db.executescript(SCHEMA)
        os.chmod(self.path, 0o600)  # secrets and tokens live here
        self._db = db
        row = db.execute("SELECT v FROM meta WHERE k='epoch'").fetchone()
        if row is None:
            self.epoch = uuid.uuid4().hex[:16]
            db.execute("INSERT OR REPLACE INTO meta VALUES ('epoch', ?)", (self.epoch,))
            log.info(
                "metastore: new cache %s, epoch %s (the cloud will send everything)", self.path, self.epoch
            )
        else:
            self.epoch = row[0]

    def _move_aside(self, exc: Exception) -> None:
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        self.recovered_from = aside
        log.error(
            "metastore: cache %s is corrupt (%s); moved it to %s and starting an empty cache with a "
            "new epoch — the cloud will resend every object",
            self.path,
            exc,
            aside,
        )

    def _apply(self, typ: str, ns: str, name: str, op: str, obj: Any) -> Change:
        db = self._db
        assert db is not None, "open() first"
        uid, rv = _uid_rv(obj)
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT uid FROM objects WHERE type=? AND namespace=? AND name=?", (typ, ns, name)
            ).fetchone()
            old_uid = row[0] if row else ""
            if op == OP_DELETE:
                if row is not None and uid and old_uid and uid != old_uid:
                    change = Change("ignored", typ, ns, name, None, old_uid)  # delete of an older object
                else:
                    db.execute("DELETE FROM objects WHERE type=? AND namespace=? AND name=?", (typ, ns, name))
                    change = Change("delete" if row else "ignored", typ, ns, name, None, old_uid)
            else:
                replaced = bool(uid and old_uid and uid != old_uid)
                kind = "insert" if row is None else ("replace" if replaced else "update")
                db.execute(
                    "INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?,?,?)",
                    (typ, ns, name, uid, rv, orjson.dumps(obj), time.time()),
                )
                change = Change(kind, typ, ns, name, obj if isinstance(obj, dict) else None, old_uid)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_sync', ?)", (repr(time.time()),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # a COMMIT refused for a full disk was rolled back by sqlite itself
                db.execute("ROLLBACK")
            raise
        return change

    def _get(self, typ: str, ns: str, name: str) -> Any:
        assert self._db is not None
        row = self._db.execute(
            "SELECT data FROM objects WHERE type=? AND namespace=? AND name=?", (typ, ns, name)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def _list(self, typ: str, ns: str | None) -> list[Any]:
        assert self._db is not None
        if ns is None:
            rows = self._db.execute("SELECT data FROM objects WHERE type=? ORDER BY namespace, name", (typ,))
        else:
            rows = self._db.execute(
                "SELECT data FROM objects WHERE type=? AND namespace=? ORDER BY name", (typ, ns)
            )
        return [orjson.loads(r[0]) for r in rows]

    def _stats(self) -> dict[str, Any]:
        assert self._db is not None
        counts = dict(self._db.execute("SELECT type, count(*) FROM objects GROUP BY type").fetchall())
        row = self._db.execute("SELECT v FROM meta WHERE k='last_sync'").fetchone()
        size = sum(
            Path(str(self.path) + s).stat().st_size for s in ("", "-wal") if Path(str(self.path) + s).exists()
        )
        return {
            "path": str(self.path),
            "epoch": self.epoch,
            "objects": counts,
            "bytes": size,
            "lastSync": float(row[0]) if row else None,
            "recoveredFrom": str(self.recovered_from) if self.recovered_from else None,
        }

    # ------------------------------------------------------------ async API

    async def apply(self, msg: Message) -> Change:
        """Persist a cloud→edge insert/update/delete; returns after the commit (then ack it).

        Other operations and unparsable resources come back as ``ignored`` (nothing is written).
        """
        res = parse_resource(msg.resource)
        if msg.operation not in CACHED_OPS or res is None or not res.name:
            return Change("ignored", res.type if res else "", res.namespace if res else "", "")
        return await self.put(res.type, res.namespace, res.name, msg.content, op=msg.operation)

    async def put(self, typ: str, ns: str, name: str, obj: Any, *, op: str = OP_UPDATE) -> Change:
        """Store an object fetched by query (configmap, secret, serviceaccounttoken) or delete it."""
        try:
            change: Change = await self._call(self._apply, typ, ns, name, op, obj)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_FULL and "full" not in str(exc):
                raise
            raise StorageFull(
                f"cache {self.path}: the disk is full ({exc}); {op} {typ} {ns}/{name} not stored and not "
                "acked — the cloud resends it",
                hint=f"free space on the filesystem of {self.path.parent}",
            ) from exc
        return change

    async def delete(self, typ: str, ns: str, name: str) -> Change:
        return await self.put(typ, ns, name, None, op=OP_DELETE)

    async def get(self, typ: str, ns: str, name: str) -> Any:
        """The cached object or None (cluster-scoped objects use namespace ``null``)."""
        return await self._call(self._get, typ, ns, name)

    async def list(self, typ: str, ns: str | None = None) -> list[Any]:
        result: list[Any] = await self._call(self._list, typ, ns)
        return result

    async def stats(self) -> dict[str, Any]:
        """Path, epoch, object counts by type, bytes on disk, last sync time (for `kedge status`)."""
        result: dict[str, Any] = await self._call(self._stats)
        return result


def read_stats(path: Path) -> dict[str, Any] | None:
    """Read-only stats for `kedge status` when the runtime is down; None when there is no cache."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            counts = dict(db.execute("SELECT type, count(*) FROM objects GROUP BY type").fetchall())
            meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
        finally:
            db.close()
    except sqlite3.Error as exc:
        return {"path": str(path), "error": str(exc)}
    return {
        "path": str(path),
        "epoch": meta.get("epoch", ""),
        "objects": counts,
        "bytes": path.stat().st_size,
        "lastSync": float(meta["last_sync"]) if "last_sync" in meta else None,
    }
