"""MetaStore: commit-before-ack survives kill -9, UID change is delete+insert, corrupt db is rebuilt."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runtime.edge.metastore import MetaStore, read_stats
from runtime.errors import StorageFull
from runtime.protocol import Message, new_message

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from runtime.edge.metastore import MetaStore
    from runtime.protocol import new_message

    async def main(path, start):
        store = await MetaStore.open(path)
        i = start
        while True:
            pod = {"metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}",
                                "resourceVersion": str(i)}, "spec": {"x": "y" * 200}}
            await store.apply(new_message("edgecontroller", "resource", "insert",
                                          f"default/pod/p{i}", pod, resourceversion=str(i)))
            sys.stdout.write(f"{i}\\n")   # the "ack": only after apply returned
            sys.stdout.flush()
            i += 1

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def pod_msg(name: str, uid: str, op: str = "insert", rv: str = "1") -> Message:
    pod = {"metadata": {"name": name, "namespace": "default", "uid": uid, "resourceVersion": rv}}
    return new_message("edgecontroller", "resource", op, f"default/pod/{name}", pod, resourceversion=rv)


def test_kill_9_during_writes_loses_no_acked_object(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    acked: list[int] = []
    start = 0
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert proc.stdout is not None
        got_first = proc.stdout.readline()
        assert got_first.strip(), "writer produced no ack"
        acked.append(int(got_first))
        time.sleep(0.05 + 0.03 * round_)  # kill at a different point of the write cycle each round
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        acked += [int(x) for x in rest.split()]  # everything printed before death was acked
        assert proc.returncode == -signal.SIGKILL
        start = acked[-1] + 1
    assert len(acked) > 20, "the writer should have committed many objects"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = {r[0] for r in conn.execute("SELECT name FROM objects WHERE type='pod'")}
    conn.close()
    lost = [i for i in acked if f"p{i}" not in names]
    assert not lost, f"acked objects lost after kill -9: {lost[:10]}"

    async def reopen() -> None:
        store = await MetaStore.open(db)
        try:
            assert (await store.get("pod", "default", f"p{acked[-1]}"))["metadata"]["uid"] == f"u{acked[-1]}"
        finally:
            await store.close()

    asyncio.run(reopen())


async def test_uid_change_is_delete_plus_insert_and_stale_delete_ignored(tmp_path: Path) -> None:
    store = await MetaStore.open(tmp_path / "c.db")
    try:
        assert (await store.apply(pod_msg("web", "u1"))).op == "insert"
        assert (await store.apply(pod_msg("web", "u1", "update", "2"))).op == "update"
        ch = await store.apply(pod_msg("web", "u2", "insert", "3"))
        assert (ch.op, ch.old_uid) == ("replace", "u1")
        assert (await store.apply(pod_msg("web", "u1", "delete"))).op == "ignored"  # old object's delete
        assert (await store.get("pod", "default", "web"))["metadata"]["uid"] == "u2"
        assert (await store.apply(pod_msg("web", "u2", "delete"))).op == "delete"
        assert await store.get("pod", "default", "web") is None
        # other operations and shapes are never cached
        keepalive = new_message("websocket", "resource", "keepalive", "node", "ping")
        assert (await store.apply(keepalive)).op == "ignored"
        await store.put("configmap", "default", "cm", {"data": {"a": "1"}})
        assert await store.list("configmap") == [{"data": {"a": "1"}}]
        assert (await store.stats())["objects"] == {"configmap": 1}
    finally:
        await store.close()
    assert oct((tmp_path / "c.db").stat().st_mode & 0o777) == "0o600"


async def test_corrupt_cache_is_moved_aside_with_new_epoch(tmp_path: Path, caplog: object) -> None:
    db = tmp_path / "cache.db"
    store = await MetaStore.open(db)
    await store.apply(pod_msg("web", "u1"))
    epoch = store.epoch
    await store.close()
    with db.open("r+b") as f:  # trash the header and the first pages
        f.write(os.urandom(8192))
    store = await MetaStore.open(db)
    try:
        assert store.epoch != epoch and store.recovered_from is not None
        assert await store.get("pod", "default", "web") is None
        await store.apply(pod_msg("web", "u1"))  # the resync refills it
    finally:
        await store.close()
    store2 = await MetaStore.open(db)  # the next start keeps the rebuilt cache: no loop
    try:
        assert store2.epoch == store.epoch and store2.recovered_from is None
        assert await store2.get("pod", "default", "web") is not None
    finally:
        await store2.close()
    epoch = store.epoch
    aside = [n for n in os.listdir(tmp_path) if n.startswith("cache.db.corrupt-")]
    assert aside, "the corrupt database must be kept for inspection"
    stats = read_stats(db)
    assert stats is not None and stats["epoch"] == epoch


async def test_a_full_disk_is_a_storage_full_error_naming_the_file_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    """sqlite refuses the COMMIT (SQLITE_FULL, here from max_page_count) and rolls back itself: the error
    is StorageFull naming the file and the fix — it was "cannot rollback - no transaction is active"."""
    store = await MetaStore.open(tmp_path / "cache.db")
    try:
        await store.apply(pod_msg("small", "u1"))
        db = store._db
        assert db is not None
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        big = pod_msg("big", "u2")
        big.content["spec"] = {"blob": "x" * 200_000}
        with pytest.raises(StorageFull) as err:
            await store.apply(big)
        assert f"cache {tmp_path / 'cache.db'}: the disk is full" in str(err.value)
        assert err.value.hint == f"free space on the filesystem of {tmp_path}"
        assert await store.get("pod", "default", "big") is None  # not stored, so not acked
        db.execute("PRAGMA max_page_count = 1073741823")  # space returns
        await store.apply(big)
        assert (await store.get("pod", "default", "big"))["spec"]["blob"] == "x" * 200_000
    finally:
        await store.close()
