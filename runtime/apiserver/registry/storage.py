"""Objects in memory (raw JSON bytes + a small projection for selectors), one global resourceVersion,
an event history window for watch resume, and fan-out to watchers.

Why raw bytes: GET and LIST answer stored bytes without re-encoding, and 10,000 pods cost ~30 MB
instead of ~150 MB of dicts. A write is applied to memory at once (so the next write computes on it)
and its watch event is emitted only once it is durable; readers of memory may see a write a few
hundred microseconds before its commit, never an event for one that was not committed. A commit the
disk refuses is undone in memory — with every write made after it, which was computed on it — and
each of them answers 500 InternalError, as kube-apiserver does when etcd refuses a write.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from runtime.apiserver.http.status_errors import internal
from runtime.apiserver.registry.db import Database, Row
from runtime.apiserver.registry.wireorder import encode

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped
MAX_BUFFERED = 16 * 1024 * 1024  # bytes a watcher may hold back; beyond, it is closed (re-list, watch)


class Entry:
    """One stored object: its JSON and what selectors read without decoding it."""

    __slots__ = ("fields", "labels", "raw", "rv")

    def __init__(self, raw: bytes, obj: Obj) -> None:
        self.raw = raw
        meta = obj.get("metadata") or {}
        self.rv = int(meta.get("resourceVersion") or 0)
        self.labels: dict[str, str] = meta.get("labels") or {}
        spec = obj.get("spec")
        status = obj.get("status")
        self.fields: Obj = {
            "metadata": {"name": meta.get("name", ""), "namespace": meta.get("namespace", "")}
        }
        if obj.get("kind") == "Pod":
            self.fields["spec"] = {"nodeName": (spec or {}).get("nodeName", "")}
            self.fields["status"] = {"phase": (status or {}).get("phase", "")}

    def obj(self) -> Obj:
        """A fresh, mutable copy of the object."""
        out: Obj = orjson.loads(self.raw)
        return out

    @classmethod
    def of(cls, obj: Obj, storage_key: str = "") -> Entry:
        """`obj` encoded as the real server writes it (wireorder.py), for storage under `storage_key`."""
        # orjson hands back a buffer of at least 4 KiB whatever the length; an exact-size copy keeps
        # 10,000 stored pods from costing 10,000 such buffers.
        return cls(bytes(memoryview(encode(obj, storage_key))), obj)


@dataclass(slots=True)
class Event:
    type: str  # ADDED MODIFIED DELETED
    res: str
    key: Key
    rv: int
    new: Entry  # for DELETED: the object as deleted (with the deletion's resourceVersion)
    prev: Entry | None
    _frame: bytes | None = None
    _chunk: bytes | None = None

    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = b'{"type":"' + self.type.encode() + b'","object":' + self.new.raw + b"}\n"
        return self._frame

    def chunk(self) -> bytes:
        """The frame as one HTTP/1.1 chunk, built once and written to every plain watcher."""
        if self._chunk is None:
            self._chunk = as_chunk(self.frame())
        return self._chunk


def as_chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


class Watcher:
    """A subscriber: decides per event what (if anything) it sees, and buffers frames for its writer."""

    def __init__(
        self,
        res: str,
        namespace: str | None,
        name: str | None,
        match: Callable[[Entry], bool] | None,
        after_rv: int,
        limit: int = MAX_BUFFERED,
    ) -> None:
        self.res = res
        self.namespace = namespace
        self.name = name
        self.match = match
        self.after_rv = after_rv
        self.frames: list[bytes] = []
        self.buffered = 0  # bytes in `frames`
        self.wake = asyncio.Event()
        self.closed = False
        self.overflow = False
        self.limit = limit  # bytes, as the direct mode's write buffer is capped
        self.last_rv = after_rv
        # Direct mode: frames go straight to the connection as HTTP chunks, no task wakeup per event.
        # The sink returns False when the peer is gone or too far behind.
        self.sink: Callable[[bytes], bool] | None = None

    def _scoped(self, key: Key) -> bool:
        if self.namespace is not None and key[0] != self.namespace:
            return False
        return self.name is None or key[1] == self.name

    def offer(self, ev: Event) -> None:
        if ev.rv <= self.after_rv or self.closed or not self._scoped(ev.key):
            return
        if self.sink is not None:
            if self.match is None:
                data = ev.chunk()
            else:
                frame = self._translate(ev)
                if frame is None:
                    return
                data = as_chunk(frame)
            self.last_rv = ev.rv
            if not self.sink(data):
                self.overflow = True
                self.close()
            return
        frame = self._translate(ev)
        if frame is None:
            return
        self.last_rv = ev.rv
        if self.buffered + len(frame) > self.limit:
            self.overflow = True
            self.closed = True
            self.frames, self.buffered = [], 0  # it is told to re-list: what it missed goes
        else:
            self.frames.append(frame)
            self.buffered += len(frame)
        self.wake.set()

    def take(self) -> bytes:
        """The buffered frames, joined, and the buffer emptied."""
        data = b"".join(self.frames)
        self.frames, self.buffered = [], 0
        return data

    def _translate(self, ev: Event) -> bytes | None:
        if self.match is None:
            return ev.frame()
        cur = ev.type != "DELETED" and self.match(ev.new)
        old = ev.prev is not None and self.match(ev.prev)
        if ev.type == "DELETED":
            return ev.frame() if old or self.match(ev.new) else None
        if cur and old:
            return ev.frame()
        if cur:
            return b'{"type":"ADDED","object":' + ev.new.raw + b"}\n"
        if old and ev.prev is not None:
            # stopped matching: DELETED carrying the previous state at the event's resourceVersion
            prev = ev.prev.obj()
            prev.setdefault("metadata", {})["resourceVersion"] = str(ev.rv)
            return b'{"type":"DELETED","object":' + orjson.dumps(prev) + b"}\n"
        return None

    def close(self) -> None:
        self.closed = True
        self.wake.set()


@dataclass(slots=True, eq=False)  # compared by identity
class _Pending:
    """A commit applied to memory and not yet durable: how to undo it, and who waits for it."""

    undo: list[tuple[str, Key, Entry | None, bool]]  # (res, key, previous entry, key was new)
    fut: asyncio.Future[None]
    cancelled: bool = False


class Store:
    def __init__(self, db: Database | None, *, history: int = 10_000) -> None:
        self.db = db
        self.data: dict[str, dict[Key, Entry]] = collections.defaultdict(dict)
        self.rv = 0  # last resourceVersion handed out (memory may be ahead of disk by one batch)
        self.history: collections.deque[Event] = collections.deque()
        self.history_size = history
        self.floor = 0  # oldest resourceVersion a watch may resume from
        self.emitted_rv = 0  # every event up to here has been offered to watchers (bookmarks use it)
        self.watchers: dict[str, set[Watcher]] = collections.defaultdict(set)
        self.listeners: list[Callable[[Event], None]] = []  # in-process observers (CRD registry)
        self._order: dict[str, list[Key]] = {}
        self._pending: collections.deque[_Pending] = collections.deque()  # commit order

    def load(self) -> None:
        if self.db is None:
            return
        rv, rows = self.db.load()
        for res, ns, name, raw in rows:
            if raw is not None:
                entry = self.data[res][(ns, name)] = Entry(raw, orjson.loads(raw))
                rv = max(rv, entry.rv)
        self.rv = rv
        self.floor = rv

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.floor = self.rv
        self.emitted_rv = self.rv
        if self.db is not None:
            self.db.start(loop)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, res: str, ns: str, name: str) -> Entry | None:
        return self.data[res].get((ns, name))

    def items(self, res: str, ns: str | None) -> list[tuple[Key, Entry]]:
        """Sorted by (namespace, name), like etcd's key order (the order is cached until keys change)."""
        bucket = self.data[res]
        keys = self._order.get(res)
        if keys is None:
            keys = self._order[res] = sorted(bucket)
        if ns is None:
            return [(k, bucket[k]) for k in keys]
        return [(k, bucket[k]) for k in keys if k[0] == ns]

    # -- writes ---------------------------------------------------------------------------------
    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def commit(self, changes: Iterable[tuple[str, str, Key, Obj]]) -> asyncio.Future[None]:
        """Apply (type, res, key, obj) changes, each already carrying its resourceVersion.

        Memory changes now; the returned future resolves when they are durable and their events sent.
        """
        events: list[Event] = []
        rows: list[Row] = []
        undo: list[tuple[str, Key, Entry | None, bool]] = []
        top = self.rv
        for typ, res, key, obj in changes:
            bucket = self.data[res]
            prev = bucket.get(key)
            entry = Entry.of(obj, res)
            top = max(top, entry.rv)
            undo.append((res, key, prev, prev is None or typ == "DELETED"))
            if prev is None or typ == "DELETED":
                self._order.pop(res, None)
            if typ == "DELETED":
                bucket.pop(key, None)
                rows.append((res, key[0], key[1], None))
            else:
                bucket[key] = entry
                rows.append((res, key[0], key[1], entry.raw))
            events.append(Event(typ, res, key, entry.rv, entry, prev))
        loop = asyncio.get_running_loop()
        pending = _Pending(undo, loop.create_future())

        def done() -> None:
            if self._pending and self._pending[0] is pending:
                self._pending.popleft()  # always, as commits complete in order
            elif pending in self._pending:
                self._pending.remove(pending)
            for ev in events:
                self._emit(ev)
            if not pending.fut.done():
                pending.fut.set_result(None)

        if self.db is None:
            done()
        else:
            self._pending.append(pending)
            # Queued as the loop's last ready callback rather than now: the writer thread wakes when
            # the loop is about to sleep (not to wait for the GIL it still holds), and writes made
            # in the same loop turn share one commit. Order is kept: call_soon is FIFO.
            loop.call_soon(self._submit, pending, rows, top, done)
        return pending.fut

    def _submit(self, pending: _Pending, rows: list[Row], top: int, done: Callable[[], None]) -> None:
        if pending.cancelled or self.db is None:  # undone with an earlier failed write: never written
            return
        self.db.submit(rows, top, done, lambda exc: self._failed(pending, exc))

    def _failed(self, pending: _Pending, exc: Exception) -> None:
        """The disk refused `pending`: undo it and every later write (each was computed on it, newest
        first), answer them all with the error, then let the writer take writes again."""
        if pending.cancelled or self.db is None:
            return
        while self._pending:
            later = self._pending.pop()
            later.cancelled = True
            for res, key, prev, reorder in reversed(later.undo):
                bucket = self.data[res]
                if reorder:
                    self._order.pop(res, None)
                if prev is None:
                    bucket.pop(key, None)
                else:
                    bucket[key] = prev
            if not later.fut.done():
                later.fut.set_exception(internal(f"storage: {exc}"))
            if later is pending:
                break
        self.db.resume(self.rv)

    def _emit(self, ev: Event) -> None:
        self.emitted_rv = max(self.emitted_rv, ev.rv)
        self.history.append(ev)
        if len(self.history) > self.history_size:
            old = self.history.popleft()
            self.floor = old.rv
        for w in tuple(self.watchers.get(ev.res, ())):
            w.offer(ev)
        for listener in self.listeners:
            listener(ev)

    # -- watch ----------------------------------------------------------------------------------
    def subscribe(self, w: Watcher) -> None:
        self.watchers[w.res].add(w)

    def unsubscribe(self, w: Watcher) -> None:
        self.watchers[w.res].discard(w)

    def replay(self, w: Watcher) -> None:
        """Offer the kept events after the watcher's starting resourceVersion (caller checked floor)."""
        for ev in self.history:
            if ev.res == w.res and ev.rv > w.after_rv:
                w.offer(ev)

    def close(self) -> None:
        for ws in self.watchers.values():
            for w in ws:
                w.close()
        if self.db is not None:
            self.db.close()
