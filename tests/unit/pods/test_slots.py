"""The start bound (issue 22): per pod, lazily taken, given up for pulls, never more than the limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runtime.config import EdgeConfig, load
from runtime.edge.pods.slots import PodSlot, StartBound, default_parallel
from runtime.edge.pods.translate import LOG_CONFIG, log_config
from runtime.errors import ConfigError


def test_default_parallel_follows_the_cpu_count() -> None:
    assert [default_parallel(n) for n in (1, 2, 4, 64)] == [2, 4, 8, 16]


async def test_a_pod_holds_one_slot_however_many_containers_take_it() -> None:
    bound = StartBound(2)
    a, b, c = PodSlot(bound), PodSlot(bound), PodSlot(bound)
    await asyncio.gather(a.take(), a.take(), a.take(), b.take())
    assert bound.busy == 2
    third = asyncio.create_task(c.take())
    await asyncio.sleep(0.01)  # the thing under test: the waiter stays waiting
    assert not third.done()  # the bound holds
    a.away()  # a pull: the slot goes to the waiting pod
    await asyncio.wait_for(third, 1)
    assert (bound.busy, bound.peak) == (2, 2)
    retake = asyncio.create_task(a.take())  # the pull is over: back in the queue
    await asyncio.sleep(0.01)  # the thing under test: the waiter stays waiting
    assert not retake.done()
    b.release()
    b.release()  # idempotent
    await asyncio.wait_for(retake, 1)
    a.release()
    c.release()
    assert bound.busy == 0


def test_the_bound_is_configurable_in_edge_toml(tmp_path: Path) -> None:
    assert EdgeConfig().runtime.parallel_pod_starts == 0  # 0: from the CPU count
    cfg = tmp_path / "edge.toml"
    cfg.write_text("[runtime]\nparallel_pod_starts = 3\n")
    assert load(EdgeConfig, cfg).runtime.parallel_pod_starts == 3
    cfg.write_text("[runtime]\nparallel_pod_starts = -1\n")
    with pytest.raises(ConfigError):
        load(EdgeConfig, cfg)
    with pytest.raises(ValueError):
        StartBound(0)


def test_the_containers_log_limits_are_configurable_in_edge_toml(tmp_path: Path) -> None:
    default = EdgeConfig().runtime
    assert log_config(default.container_log_max_mib, default.container_log_max_files) == LOG_CONFIG
    cfg = tmp_path / "edge.toml"
    cfg.write_text("[runtime]\ncontainer_log_max_mib = 200\ncontainer_log_max_files = 3\n")
    runtime = load(EdgeConfig, cfg).runtime
    logs = log_config(runtime.container_log_max_mib, runtime.container_log_max_files)
    assert logs == {"type": "json-file", "config": {"max-size": "200m", "max-file": "3"}}
    for bad in ("container_log_max_mib = 0", "container_log_max_files = 0"):
        cfg.write_text(f"[runtime]\n{bad}\n")
        with pytest.raises(ConfigError):
            load(EdgeConfig, cfg)
