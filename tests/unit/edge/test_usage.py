"""The edge's usage sampling (issue 20): cgroup v1 and v2 files as Docker lays them out (cgroupfs and
systemd drivers), the node from /proc, rates between samples, the report's shape and bound. The real
files of real containers are read by tests/e2e/test_top.py and scripts/bench/usage_sampling.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from runtime.cloud.usage.store import parse_report
from runtime.edge.usage import CgroupReader, UsageSampler, usage_message
from runtime.edge.usage.sampler import MAX_CONTAINERS
from tests.fixtures.wait import eventually_async

CID = "c" * 64


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _proc(root: Path, busy_ticks: int = 300, total_kib: int = 4_000_000, avail_kib: int = 3_000_000) -> Path:
    proc = root / "proc"
    # cpu user nice system idle iowait irq softirq steal: busy = 100+0+100+0+0+100 (+idle/iowait left out)
    per = busy_ticks // 3
    _write(proc / "stat", f"cpu  {per} 0 {per} 99999 555 0 0 {per} 0 0\ncpu0 1 2 3 4\n")
    _write(
        proc / "meminfo", f"MemTotal:       {total_kib} kB\nMemFree: 1 kB\nMemAvailable:   {avail_kib} kB\n"
    )
    return proc


def test_cgroup_v1_cgroupfs_driver(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    _write(cg / "cpuacct" / "docker" / CID / "cpuacct.usage", "2500000000\n")
    _write(cg / "memory" / "docker" / CID / "memory.usage_in_bytes", "10485760\n")
    _write(
        cg / "memory" / "docker" / CID / "memory.stat",
        "cache 100\ninactive_file 7\ntotal_inactive_file 1048576\n",
    )
    r = CgroupReader(cg, _proc(tmp_path))
    got = r.container(CID)
    assert got is not None and got.cpu_ns == 2_500_000_000 and got.memory == 10485760 - 1048576
    assert r.container("d" * 64) is None


def test_cgroup_v2_systemd_driver(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    _write(cg / "cgroup.controllers", "cpu memory\n")
    scope = cg / "system.slice" / f"docker-{CID}.scope"
    _write(scope / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    _write(scope / "memory.current", "5000000\n")
    _write(scope / "memory.stat", "anon 4000000\nfile 1000000\ninactive_file 600000\n")
    got = CgroupReader(cg, _proc(tmp_path)).container(CID)
    assert got is not None and got.cpu_ns == 1_500_000_000 and got.memory == 4_400_000


def test_a_container_whose_cgroup_went_away_reads_none(tmp_path: Path) -> None:
    cg = tmp_path / "cg"
    usage = cg / "cpuacct" / "docker" / CID / "cpuacct.usage"
    _write(usage, "1\n")
    _write(cg / "memory" / "docker" / CID / "memory.usage_in_bytes", "1\n")
    _write(cg / "memory" / "docker" / CID / "memory.stat", "total_inactive_file 0\n")
    r = CgroupReader(cg, _proc(tmp_path))
    assert r.container(CID) is not None
    usage.unlink()
    assert r.container(CID) is None


def test_the_node_from_proc(tmp_path: Path) -> None:
    r = CgroupReader(tmp_path / "none", _proc(tmp_path, busy_ticks=300))
    node = r.node()
    assert node.cpu_ns == 300 * r._tick_ns  # user + system + steal, never idle or iowait
    assert node.memory == (4_000_000 - 3_000_000) * 1024


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _container(cid: str, pod: str, name: str, kind: str = "app") -> dict[str, Any]:
    labels = {"io.kedge.pod.namespace": "default", "io.kedge.pod.name": pod, "io.kedge.pod.uid": f"uid-{pod}",
              "io.kedge.container.name": name, "io.kedge.container.kind": kind}  # fmt: skip
    return {"Id": cid, "Labels": labels, "Created": 990}


async def test_rates_come_from_the_previous_sample_and_the_report_parses(tmp_path: Path) -> None:
    cg, proc = tmp_path / "cg", _proc(tmp_path, busy_ticks=300)
    cpu = cg / "cpuacct" / "docker" / CID / "cpuacct.usage"
    _write(cpu, "1000000000\n")
    _write(cg / "memory" / "docker" / CID / "memory.usage_in_bytes", "8192\n")
    _write(cg / "memory" / "docker" / CID / "memory.stat", "total_inactive_file 0\n")
    listed = [_container(CID, "web", "app"), _container("s" * 64, "web", "POD", kind="sandbox")]

    async def lister() -> list[dict[str, Any]]:
        return listed

    clock = _Clock()
    s = UsageSampler(CgroupReader(cg, proc), lister, clock=clock)
    assert await s.sample() is None  # the first sample has no window
    clock.t += 2.0
    _write(cpu, "2000000000\n")  # one more CPU-second in 2 s: half a core
    report = await s.sample()
    assert report is not None
    assert report["window"] == 2000 and report["time"] == 1002000
    [pod] = report["pods"]  # the sandbox is no container of the pod's own
    assert pod["name"] == "web" and pod["uid"] == "uid-web"
    [c] = pod["containers"]
    assert c == {"name": "app", "start": 990, "cpu": 2_000_000_000, "cpuRate": 500_000_000, "memory": 8192}
    msg = usage_message("n1", report)
    assert (msg.source, msg.group, msg.operation, msg.resource) == (
        "edged",
        "resource",
        "update",
        "null/nodeusage/n1",
    )
    assert parse_report(msg.content).pods[0].containers[0].cpu_rate == 500_000_000


async def test_a_new_container_rate_is_its_lifetime_average_and_the_report_is_bounded(tmp_path: Path) -> None:
    cg, proc = tmp_path / "cg", _proc(tmp_path)
    ids = [f"{i:064x}" for i in range(MAX_CONTAINERS + 5)]
    for cid in ids:
        _write(cg / "cpuacct" / "docker" / cid / "cpuacct.usage", "5000000000\n")
        _write(cg / "memory" / "docker" / cid / "memory.usage_in_bytes", "4096\n")
        _write(cg / "memory" / "docker" / cid / "memory.stat", "total_inactive_file 0\n")

    async def lister() -> list[dict[str, Any]]:
        return [_container(cid, f"p{i}", "app") for i, cid in enumerate(ids)]

    clock = _Clock()
    s = UsageSampler(CgroupReader(cg, proc), lister, clock=clock)
    await s.sample()
    clock.t += 1.0
    report = await s.sample()
    assert report is not None and sum(len(p["containers"]) for p in report["pods"]) == MAX_CONTAINERS
    s2 = UsageSampler(CgroupReader(cg, proc), lister, clock=clock)
    s2._last = clock.t - 1  # a window exists, the containers are new to this sampler
    fresh = await s2.sample()
    assert fresh is not None
    # 5 CPU-seconds since Created (990) at t=1001: 5/11 of a core
    assert fresh["pods"][0]["containers"][0]["cpuRate"] == int(5e9 / 11)


async def test_without_pods_only_the_node_is_sampled(tmp_path: Path) -> None:
    clock = _Clock()
    s = UsageSampler(CgroupReader(tmp_path / "cg", _proc(tmp_path)), None, clock=clock)
    await s.sample()
    clock.t += 1
    report = await s.sample()
    assert report is not None and report["pods"] == [] and report["node"]["memory"] > 0


async def test_the_sampler_counts_itself_as_prometheus_series(tmp_path: Path) -> None:

    from runtime.edge.metrics import EdgeMetrics
    from tests.fixtures.promcheck import families, lint

    clock = _Clock()
    s = UsageSampler(CgroupReader(tmp_path / "cg", _proc(tmp_path)), None, clock=clock)
    for _ in range(3):
        clock.t += 1
        report = await s.sample()

    assert report is not None and s.status()["samples"] == 3
    text, _ = EdgeMetrics(dict).exposition({"usage": s.status()})
    assert lint(text.decode()) == []
    got = {(x.name, x.labels.get("outcome")): x.value for f in families(text.decode()) for x in f.samples}
    assert got[("kedge_edge_usage_samples_total", "taken")] == 3
    assert got[("kedge_edge_usage_samples_total", "reported")] == 0
    assert got[("kedge_edge_usage_sampling_cpu_seconds_total", None)] > 0


async def test_a_failing_sample_is_said_once_then_counted(tmp_path: Path, caplog: Any) -> None:
    clock = _Clock()
    s = UsageSampler(CgroupReader(tmp_path / "cg", tmp_path / "no-proc"), None, clock=clock)
    stop = asyncio.Event()
    reports: list[dict[str, Any]] = []

    async def send(report: dict[str, Any]) -> bool:
        reports.append(report)
        return True

    task = asyncio.create_task(s.run(send, stop, 0.01))
    await eventually_async(lambda: s.errors >= 5 or None, within=10, what="five failed samples")
    stop.set()
    await task
    said = [r for r in caplog.records if "usage sample failed" in r.getMessage()]
    assert len(said) == 1 and reports == [] and s.status()["errors"] >= 5
