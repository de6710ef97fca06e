"""What `kubectl top`'s sampling costs (issue 20): the edge per sample with N pod containers, the Docker
engine's share, Docker's stats API side by side, the report's size, and the cloud's memory per edge.

Edge: N busybox containers labelled as one node's pod containers (each its own pod); the real
UsageSampler (one GET /containers/json + a thread reading cgroup files) samples them SAMPLES times;
per sample the edge process's CPU (getrusage, threads included), wall time, dockerd's CPU
(/proc/<dockerd>/stat, the engine is shared: an idle window of the same length is measured right
before and subtracted) — and the same for Docker's stats API with one one-shot request per container
(`GET /containers/<id>/stats?stream=false&one-shot=true`, what a stats-based sampler needs at least).
Edge memory: tracemalloc peak of one sample and VmRSS growth over all samples. The cloud: tracemalloc of
a UsageStore holding EDGES edges' reports (0 and 10 pods each), per edge.

    .venv/bin/python scripts/bench/usage_sampling.py [--pods 10,100] [--samples 20] [--edges 1000]

Prints one JSON line. Needs the Docker engine and kedge.local/busybox:1 (scripts/lib.sh builds it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from runtime.cloud.usage.store import UsageStore  # noqa: E402
from runtime.edge.engine import engine_get  # noqa: E402
from runtime.edge.usage import CgroupReader, UsageSampler, usage_message  # noqa: E402
from runtime.edge.usage.sampler import engine_lister  # noqa: E402
from runtime.protocol import encode  # noqa: E402

IMAGE = "kedge.local/busybox:1"
STATS_SUBSET = 5
HOST = "unix:///var/run/docker.sock"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def dockerd_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_containers(node: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        uid = uuid.uuid4().hex
        labels = [
            "io.kedge.managed=true",
            f"io.kedge.node={node}",
            f"io.kedge.pod.uid={uid}",
            "io.kedge.pod.namespace=bench",
            f"io.kedge.pod.name=p{i}",
            "io.kedge.container.name=app",
            "io.kedge.container.kind=app",
        ]
        args = ["docker", "run", "-d", "--rm", "--network", "none"]
        for label in labels:
            args += ["--label", label]
        out = subprocess.run([*args, IMAGE, "sleep", "3600"], capture_output=True, text=True, check=True)
        ids.append(out.stdout.strip())
    return ids


def remove(ids: list[str]) -> None:
    for i in range(0, len(ids), 50):
        subprocess.run(["docker", "rm", "-f", *ids[i : i + 50]], capture_output=True, check=False)


async def measure(label: str, dpid: int, calls: int, one: Any) -> dict[str, float]:
    """Per call of ``one()``: this process's CPU ms and wall ms (medians), and dockerd's CPU ms — its
    CPU over all calls back to back minus its CPU over an idle window as long (it serves others too;
    its counters tick at 10 ms, so only the total over many calls means something)."""
    cpu, wall = [], []
    d0, t0 = dockerd_cpu(dpid), time.monotonic()
    for _ in range(calls):
        c0, w0 = cpu_self(), time.monotonic()
        await one()
        cpu.append((cpu_self() - c0) * 1000)
        wall.append((time.monotonic() - w0) * 1000)
    busy, took = dockerd_cpu(dpid) - d0, time.monotonic() - t0
    i0 = dockerd_cpu(dpid)
    await asyncio.sleep(took)
    idle = dockerd_cpu(dpid) - i0
    return {
        f"{label}_cpu_ms": round(statistics.median(cpu), 2),
        f"{label}_wall_ms": round(statistics.median(wall), 2),
        f"{label}_dockerd_cpu_ms": round(max(busy - idle, 0.0) / calls * 1000, 2),
    }


async def edge(n: int, samples: int, dpid: int) -> dict[str, Any]:
    node = f"bench-{uuid.uuid4().hex[:6]}"
    ids = await asyncio.to_thread(start_containers, node, n)
    try:
        sampler = UsageSampler(CgroupReader(), engine_lister(HOST, node))
        await sampler.sample()
        report = await sampler.sample()
        assert report is not None
        got = sum(len(p["containers"]) for p in report["pods"])
        assert got == n, f"sampled {got} of {n} containers (cgroup layout not found?)"
        rss0 = rss_kib()
        out: dict[str, Any] = {"pods": n, "report_bytes": len(encode(usage_message(node, report)))}
        out.update(await measure("sample", dpid, samples, sampler.sample))
        out["sample_rss_growth_kib"] = rss_kib() - rss0
        tracemalloc.start()
        await sampler.sample()
        out["sample_traced_peak_kib"] = round(tracemalloc.get_traced_memory()[1] / 1024, 1)
        tracemalloc.stop()

        subset = ids[:STATS_SUBSET]

        async def stats_api() -> None:  # what a stats-based sampler asks per container and interval
            for cid in subset:
                await engine_get(HOST, f"/containers/{cid}/stats?stream=false&one-shot=true", timeout=30)

        # per container (the engine takes about a second each: a subset, then scaled to the N pods)
        for k, v in (await measure("docker_stats", dpid, 2, stats_api)).items():
            out[k.replace("docker_stats", "docker_stats_per_container")] = round(v / len(subset), 2)
        for interval in (15,):
            out[f"edge_core_pct_at_{interval}s"] = round(out["sample_cpu_ms"] / (interval * 1000) * 100, 4)
            out[f"edge_plus_dockerd_core_pct_at_{interval}s"] = round(
                (out["sample_cpu_ms"] + out["sample_dockerd_cpu_ms"]) / (interval * 1000) * 100, 4
            )
        return out
    finally:
        await asyncio.to_thread(remove, ids)


def cloud(edges: int, pods: int) -> float:
    """Bytes of traced memory per edge for a UsageStore holding `edges` reports of `pods` pods."""
    import gc

    async def fill(store: UsageStore) -> None:
        for e in range(edges):
            node = f"edge-{e:05d}"
            report = {
                "time": 1_765_000_000_000 + e,
                "window": 15000,
                "node": {"cpu": 10**12 + e, "cpuRate": 10**8 + e, "memory": 2**30 + e},
                "pods": [
                    {
                        "namespace": "default",
                        "name": f"app-{e}-{p}",
                        "uid": uuid.uuid4().hex,
                        "containers": [
                            {
                                "name": "app",
                                "start": 1_765_000_000,
                                "cpu": 10**9 + p,
                                "cpuRate": 10**7 + p,
                                "memory": 2**24 + p,
                            }
                        ],
                    }
                    for p in range(pods)
                ],
            }
            await store.on_message(node, usage_message(node, report))

    gc.collect()
    tracemalloc.start()
    store = UsageStore()
    base = tracemalloc.get_traced_memory()[0]
    asyncio.run(fill(store))
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(store.nodes) == edges
    return used / edges


def machine() -> dict[str, Any]:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "",
    )
    docker_v = subprocess.run(
        ["docker", "version", "-f", "{{.Server.Version}}"], capture_output=True, text=True
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "docker": docker_v.stdout.strip(),
        "cgroup_v2": Path("/sys/fs/cgroup/cgroup.controllers").exists(),
        "loadavg_1m_at_end": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", default="10,100")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--edges", type=int, default=1000)
    args = ap.parse_args()
    dpid = int(
        subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=True).stdout.split()[0]
    )
    result: dict[str, Any] = {"bench": "usage_sampling"}
    for n in (int(x) for x in args.pods.split(",")):
        result[f"edge_{n}_pods"] = asyncio.run(edge(n, args.samples, dpid))
    result["cloud_bytes_per_edge_node_only"] = round(cloud(args.edges, 0))
    result["cloud_bytes_per_edge_10_pods"] = round(cloud(args.edges, 10))
    result["cloud_edges"] = args.edges
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
