"""A buffered watcher (Table or converted watches, whose writer renders frames) holds back at most
MAX_BUFFERED bytes, as the direct mode's write buffer does (issue 21): a consumer that stops reading
is closed and told to re-list, instead of holding up to 100,000 frames of up to 1.5 MB each."""

from __future__ import annotations

import asyncio
from typing import Any

from runtime.apiserver.registry.storage import MAX_BUFFERED, Store, Watcher


def _cm(name: str, rv: int, size: int) -> dict[str, Any]:
    meta = {"name": name, "namespace": "d", "resourceVersion": str(rv)}
    return {"kind": "ConfigMap", "metadata": meta, "data": {"v": "x" * size}}


async def test_a_buffered_watcher_that_is_not_drained_is_closed_by_bytes() -> None:
    store = Store(None)
    store.start(asyncio.get_running_loop())
    slow = Watcher("/configmaps", None, None, None, after_rv=0)
    store.subscribe(slow)
    size = 1024 * 1024
    for i in range(MAX_BUFFERED // size + 2):  # ~18 frames: far below any count limit
        await store.commit([("ADDED", "/configmaps", ("d", f"c{i}"), _cm(f"c{i}", store.next_rv(), size))])
        assert slow.buffered <= MAX_BUFFERED
    assert slow.overflow and slow.closed  # the watch answers 410 "too slow" and ends
    assert slow.frames == [] and slow.buffered == 0  # and holds nothing any more


async def test_a_drained_buffered_watcher_keeps_every_frame() -> None:
    store = Store(None)
    store.start(asyncio.get_running_loop())
    w = Watcher("/configmaps", None, None, None, after_rv=0)
    store.subscribe(w)
    got = b""
    for i in range(40):
        await store.commit(
            [("ADDED", "/configmaps", ("d", f"c{i}"), _cm(f"c{i}", store.next_rv(), 1024 * 1024))]
        )
        got_now = w.take()
        assert w.buffered == 0 and got_now.count(b"\n") == 1
        got += got_now
    assert not w.overflow and got.count(b'"type":"ADDED"') == 40
