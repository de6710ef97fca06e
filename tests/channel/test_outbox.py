"""The edge's durable offline queue: order, bounds, what is dropped first, survival across reopen."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from runtime.edge.outbox import Outbox, kind_of
from runtime.protocol import keepalive, new_message
from runtime.protocol.message import Message


def podpatch(name: str, i: int) -> Message:
    return new_message("edged", "meta", "patch", f"default/podpatch/{name}", f'{{"i":{i}}}')


def event(i: int) -> Message:
    return new_message("edged", "meta", "insert", f"default/event/e{i}", {"i": i})


def other(i: int) -> Message:
    return new_message("twin", "resource", "update", f"default/device/d{i}", {"i": i})


def set_aside(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if ".corrupt-" in p.name]


async def drain(ob: Outbox) -> list[Message]:
    out: list[Message] = []
    while batch := await ob.peek(3):
        out += [m for _, m in batch]
        await ob.delete([rid for rid, _ in batch])
    return out


def test_kind_of() -> None:
    assert kind_of(podpatch("a", 1)) == "status"
    assert kind_of(new_message("edged", "meta", "patch", "null/nodepatch/n", "{}")) == "status"
    assert kind_of(event(1)) == "event"
    assert kind_of(other(1)) == "other"
    assert kind_of(keepalive()) == "other"


async def test_order_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ob.db"
    ob = Outbox(path)
    await ob.open()
    msgs = [other(i) for i in range(7)]
    for m in msgs:
        await ob.put(m)
    await ob.put(keepalive())  # never queued
    assert len(ob) == 7
    await ob.close()
    ob2 = Outbox(path)  # a restarted edge finds its queue
    await ob2.open()
    assert len(ob2) == 7 and ob2.size_bytes > 0
    assert await drain(ob2) == msgs
    assert len(ob2) == 0 and ob2.size_bytes == 0
    await ob2.close()


async def test_drop_order_superseded_then_events_then_oldest(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "ob.db", max_messages=5)
    await ob.open()
    first = [podpatch("a", 1), event(1), other(1), podpatch("a", 2), podpatch("b", 1)]
    for m in first:
        await ob.put(m)
    await ob.put(other(2))  # full: the superseded podpatch a#1 goes
    await ob.put(other(3))  # no superseded left: the oldest event goes
    await ob.put(other(4))  # nothing cheap left: the oldest message (other 1) goes
    assert ob.dropped == {"superseded": 1, "event": 1, "oldest": 1, "unreadable": 0, "corrupt": 0}
    left = await drain(ob)
    assert [m.resource for m in left] == [
        "default/podpatch/a",
        "default/podpatch/b",
        "default/device/d2",
        "default/device/d3",
        "default/device/d4",
    ]
    assert left[0].content == '{"i":2}'  # the newest status of a survived
    await ob.close()


async def test_byte_bound(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "ob.db", max_bytes=2000)
    await ob.open()
    for i in range(20):
        await ob.put(new_message("edged", "meta", "insert", f"default/event/e{i}", "x" * 200))
    assert ob.size_bytes <= 2000
    assert ob.dropped["event"] == 20 - len(ob)
    assert [m.resource for m in await drain(ob)][-1] == "default/event/e19"
    await ob.close()


async def test_unreadable_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "ob.db"
    ob = Outbox(path)
    await ob.open()
    await ob.put(other(1))
    await ob.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO outbox(kind, resource, size, data) VALUES ('other', 'x', 3, x'7b7b7b')")
    ob = Outbox(path)
    await ob.open()
    await ob.put(other(2))
    assert [m.resource for m in await drain(ob)] == ["default/device/d1", "default/device/d2"]
    assert ob.dropped["unreadable"] == 1
    await ob.close()


async def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "ob.db"
    ob = Outbox(path)
    await ob.open()
    for i in range(3):
        await ob.put(other(i))
    await ob.close()
    path.write_bytes(b"this is not a database" * 500)  # e.g. a damaged disk
    ob = Outbox(path)
    await ob.open()  # never raises: the damaged file goes aside and a new queue starts
    await ob.put(other(9))
    assert [m.resource for m in await drain(ob)] == ["default/device/d9"]
    assert set_aside(tmp_path)
    await ob.close()


async def test_open_racing_the_first_put_keeps_the_count_true(tmp_path: Path) -> None:
    """EdgeHub may queue its first message while the outbox is still opening (a fresh edge sends its
    node events at once): both threads found no connection and opened one; the opener's stale total (0)
    overwrote the put's count, and after the drain the count was -1 (`len()` then raised ValueError and
    the edge's link went down in a loop). The count must equal the rows, whatever the interleaving."""
    import asyncio

    for i in range(60):
        ob = Outbox(str(tmp_path / f"race-{i}.db"))
        await asyncio.gather(ob.open(), ob.put(podpatch("p", i)), ob.put(event(i)))
        rows = (
            sqlite3.connect(str(tmp_path / f"race-{i}.db")).execute("SELECT count(*) FROM outbox").fetchone()
        )
        assert len(ob) == rows[0] == 2, (i, len(ob), rows)
        assert len(await drain(ob)) == 2 and len(ob) == 0
        await ob.close()
