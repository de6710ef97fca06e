"""A pod's volume folder is removed off the event loop (issue 21): an emptyDir of many files takes
long to unlink, and the loop must keep serving the cloud link's keepalives and other pods meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

from runtime.edge.pods import volumes


async def test_the_loop_runs_while_a_pods_volume_folder_is_removed(tmp_path: Path) -> None:
    root = tmp_path / "pods" / "uid-1"
    data = root / "volumes" / "kubernetes.io~empty-dir" / "scratch"
    for d in range(20):
        sub = data / f"d{d}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"f{f}").write_bytes(b"x" * 64)
    ticks = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)  # the thing under test: how often the loop turns

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # let the heartbeat start
    before = ticks
    await volumes.remove(root)
    during = ticks - before
    done.set()
    await beat
    assert not root.exists()
    assert during > 0  # the loop ran other tasks while the 2,000 files went
    await volumes.remove(root)  # already gone: nothing to do, no error
