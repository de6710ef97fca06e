"""A full disk under the embedded API server's data dir (issue 21): writes answer 500 InternalError as
kube-apiserver does when etcd refuses, reads go on, /readyz says the storage fails, nothing the disk
refused is served, watched or found after a restart, and writes work again once space returns.

The disk is a real small tmpfs (CI runs as root); where mounting is refused, sqlite's "database or
disk is full" is injected at the storage layer instead (CI=true fails rather than falls back).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.apiserver.http.status_errors import StatusError
from runtime.apiserver.registry.db import Database
from runtime.apiserver.registry.storage import Store
from tests.fixtures.apiserver import http_client, start_apiserver
from tests.fixtures.procs import stop
from tests.fixtures.wait import eventually, eventually_async

BIG = "x" * 60_000  # a ConfigMap value: every write needs fresh pages


class Disk:
    """A small filesystem that can be filled to the last byte and freed again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"
        self.injected: list[Database] = []
        self.full_now = False

    def fill(self) -> None:
        if self.injected:
            self.full_now = True
            return
        with contextlib.suppress(OSError), self.filler.open("ab") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()

    def free(self) -> None:
        self.full_now = False
        self.filler.unlink(missing_ok=True)


class _FullConn:
    """Injection fallback: a sqlite connection whose writes fail while the disk is 'full'."""

    def __init__(self, conn: sqlite3.Connection, disk: Disk) -> None:
        self._conn, self._disk = conn, disk

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if self._disk.full_now and not sql.startswith(("ROLLBACK", "SELECT")):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    root = tmp_path / "fs"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(root)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mounting a tmpfs was refused: {mounted.stderr.decode().strip()}")
        d = Disk(root)
        d.injected.append(Database.__new__(Database))  # marks the fallback; real dbs are wrapped below
        yield d
        return
    try:
        yield Disk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def _open(disk: Disk) -> Store:
    db = Database(disk.root / "state.db")
    if disk.injected:
        db._conn = _FullConn(db._conn, disk)  # type: ignore[assignment]
    store = Store(db)
    store.load()
    return store


def _cm(name: str, rv: int, value: str = "") -> dict[str, Any]:
    meta = {"name": name, "namespace": "d", "resourceVersion": str(rv)}
    return {"kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


def _snapshot(store: Store) -> dict[str, dict[tuple[str, str], bytes]]:
    return {res: {k: e.raw for k, e in bucket.items()} for res, bucket in store.data.items() if bucket}


async def test_refused_writes_are_undone_answered_500_and_writes_resume(disk: Disk) -> None:
    store = _open(disk)
    db = store.db
    assert db is not None
    store.start(asyncio.get_running_loop())
    seen: list[tuple[str, tuple[str, str]]] = []
    store.listeners.append(lambda ev: seen.append((ev.type, ev.key)))
    try:
        for name in ("keep", "gone"):
            await store.commit([("ADDED", "/configmaps", ("d", name), _cm(name, store.next_rv(), "1"))])
        disk.fill()
        refused: StatusError | None = None
        for i in range(100):  # the WAL may still hold a few pages
            try:
                await store.commit(
                    [("ADDED", "/configmaps", ("d", f"big{i}"), _cm(f"big{i}", store.next_rv(), BIG))]
                )
            except StatusError as exc:
                refused = exc
                break
        assert refused is not None, "the full disk never refused a write"
        assert refused.code == 500 and refused.reason == "InternalError"
        assert "full" in refused.message
        assert db.error is not None and "full" in db.error  # /readyz's etcd check
        before, events = _snapshot(store), len(seen)
        # writes made in one loop turn share a batch: an update, a delete and a create, all refused
        futs = [
            store.commit([("MODIFIED", "/configmaps", ("d", "keep"), _cm("keep", store.next_rv(), BIG))]),
            store.commit([("DELETED", "/configmaps", ("d", "gone"), _cm("gone", store.next_rv()))]),
            store.commit([("ADDED", "/configmaps", ("d", "new"), _cm("new", store.next_rv(), BIG))]),
        ]
        results = await asyncio.gather(*futs, return_exceptions=True)
        assert all(isinstance(r, StatusError) and r.code == 500 for r in results), results
        assert _snapshot(store) == before  # memory holds only what the disk holds
        assert len(seen) == events  # no watch event for a write that was not stored
        keep = store.get("/configmaps", "d", "keep")
        assert keep is not None and keep.obj()["data"] == {"v": "1"}  # reads go on
        assert [k for k, _ in store.items("/configmaps", "d")] == sorted(before["/configmaps"])
        handed = store.rv  # a list answered now carries this version
        disk.free()
        await eventually_async(lambda: db.error is None, what="the idle writer's probe to clear the error")
        assert db.error is None, "readiness did not come back when space returned"
    finally:
        store.close()
    again = _open(disk)
    try:
        assert _snapshot(again) == before  # disk and memory never diverged
        assert again.rv >= handed  # no version a client saw is handed out again after a restart
        again.start(asyncio.get_running_loop())
        await again.commit([("MODIFIED", "/configmaps", ("d", "keep"), _cm("keep", again.next_rv(), "2"))])
        assert again.rv > handed
    finally:
        again.close()


CMS = "/api/v1/namespaces/d/configmaps"


def _served(c: httpx.Client) -> dict[str, tuple[str, Any]]:
    """name → (resourceVersion, data) of every ConfigMap the server serves in namespace d."""
    return {
        i["metadata"]["name"]: (i["metadata"]["resourceVersion"], i.get("data"))
        for i in c.get(CMS).json()["items"]
    }


def test_server_on_a_full_disk_answers_500_stays_readable_and_recovers(disk: Disk) -> None:
    """Scenario 6 (API server half): figures on one JSON line; after recovery the server is restarted
    on the same data dir and must serve exactly what it served before (stored = served)."""
    if disk.injected:
        pytest.skip("the server process needs a real small filesystem (mounting a tmpfs was refused)")
    s = start_apiserver(disk.root / "data", in_memory=False)
    assert s.proc is not None
    accepted: set[str] = set()
    try:
        with http_client(s) as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": "d"}}).status_code == 201
            assert c.post(CMS, json={"metadata": {"name": "keep"}, "data": {"v": "1"}}).status_code == 201
            accepted.add("keep")
            rv = c.get(CMS).json()["metadata"]["resourceVersion"]
            disk.fill()
            r = None
            refused = 0
            for i in range(100):
                r = c.post(CMS, json={"metadata": {"name": f"big{i}"}, "data": {"v": BIG}})
                if r.status_code != 201:
                    refused += 1
                    break
                accepted.add(f"big{i}")
            assert r is not None and r.status_code == 500, r and r.text
            body = r.json()
            assert body["kind"] == "Status" and body["reason"] == "InternalError" and body["code"] == 500
            more = (  # an update and a create while full: refused too
                c.put(f"{CMS}/keep", json={"metadata": {"name": "keep"}, "data": {"v": BIG}}),
                c.post(CMS, json={"metadata": {"name": "while-full"}, "data": {"v": BIG}}),
            )
            assert [m.status_code for m in more] == [500, 500], [m.text for m in more]
            refused += len(more)
            ready = c.get("/readyz", params={"verbose": "1"})
            assert ready.status_code == 500 and "[-]etcd failed" in ready.text
            assert c.get(f"{CMS}/keep").json()["data"] == {"v": "1"}
            stored = {i["metadata"]["name"] for i in c.get(CMS).json()["items"]}
            with c.stream(
                "GET", CMS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"}
            ) as w:
                watched = {line for line in w.iter_lines() if line}
            names = {
                httpx.Response(200, content=line).json()["object"]["metadata"]["name"] for line in watched
            }
            assert names == stored - {"keep"}  # events of what was stored, none of what was refused
            disk.free()
            freed = time.monotonic()
            eventually(lambda: c.get("/readyz").status_code == 200, what="/readyz ok again")
            ready_after = time.monotonic() - freed
            assert c.post(CMS, json={"metadata": {"name": "after"}}).status_code == 201
            accepted.add("after")
            served = _served(c)
    finally:
        stop(s.proc)
    again = start_apiserver(disk.root / "data", in_memory=False)
    try:
        with http_client(again) as c:
            after_restart = _served(c)
    finally:
        stop(again.proc)
    figures = {
        "scenario": "apiserver-data-disk-full",
        "writes_accepted_before_full": len(accepted) - 2,
        "writes_refused_500": refused,
        "lost_api_updates": len(accepted - set(after_restart)),
        "served_but_not_stored": sorted(set(served) - set(after_restart)),
        "diverged": sorted(n for n in served if after_restart.get(n) != served[n]),
        "ready_again_seconds": round(ready_after, 1),
    }
    print(json.dumps(figures, sort_keys=True), flush=True)
    assert figures["lost_api_updates"] == 0 and after_restart == served, figures
