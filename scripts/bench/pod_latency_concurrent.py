"""N pods created at once: create → Running per pod, kedge's pod manager beside Docker alone (issue 22).

Each round starts N pods on Docker alone (pod_latency_floor.one, all N at once: the engine's own floor
at that concurrency) and N pods through PodManager.sync_pod (all N handed over at once, as the edge
agent does when the cloud sends them), one after the other in the same process, alternating which goes
first. The latency of a pod is from the moment all N were handed over to its app running (floor) or to
its first Running+Ready status (kedge). Per round: p50 and max of each and their ratios; printed: the
medians over the rounds, so a loaded machine shows as noise in both columns, not as a regression.

    .venv/bin/python scripts/bench/pod_latency.py --concurrent 10 --rounds 5
    .venv/bin/python scripts/bench/pod_latency.py --floor --concurrent 10      # Docker alone
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pod_latency_floor import NoRefs, bench_pod, one

from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.manager import PodManager


async def floor_round(docker: DockerAdapter, n: int, image: str) -> list[float]:
    """N pods on Docker alone, all at once; seconds from the start to each app running."""
    node = f"floor-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()

    async def timed(i: int) -> tuple[float, list[str]]:
        _, ids = await one(docker, node, bench_pod(node, i, image))
        return time.perf_counter() - t0, ids

    done = await asyncio.gather(*(timed(i) for i in range(n)), return_exceptions=True)
    for r in done:
        if not isinstance(r, BaseException):
            for cid in r[1]:
                await docker.remove(cid)
    for r in done:
        if isinstance(r, BaseException):
            raise r
    return [r[0] for r in done if not isinstance(r, BaseException)]


async def kedge_round(
    docker: DockerAdapter, n: int, image: str, parallel: int | None, reports: list[int] | None = None
) -> list[float]:
    """N pods through the pod manager, all handed over at once; seconds to each Running+Ready status
    (`reports` gets the number of status reports, i.e. podpatches, sent until then)."""
    node = f"bench-{uuid.uuid4().hex[:8]}"
    ready: dict[str, float] = {}
    all_ready = asyncio.Event()
    sent = [0]

    async def on_status(pod: dict[str, Any], st: dict[str, Any]) -> None:
        sent[0] += 0 if all_ready.is_set() else 1
        cs = st.get("containerStatuses") or []
        if st["phase"] == "Running" and cs and all(c["ready"] for c in cs):
            ready.setdefault(pod["metadata"]["uid"], time.perf_counter())
            if len(ready) == n:
                all_ready.set()

    with tempfile.TemporaryDirectory() as tmp:
        extra = {} if parallel is None else {"parallel": parallel}
        mgr = PodManager(
            docker, node_name=node, state_dir=Path(tmp), refs=NoRefs(), on_status=on_status, **extra
        )
        await mgr.start()
        stop = asyncio.Event()
        loop = asyncio.create_task(mgr.run(stop))
        pods = [bench_pod(node, i, image) for i in range(n)]
        try:
            t0 = time.perf_counter()
            syncs = [asyncio.create_task(mgr.sync_pod(p)) for p in pods]  # as the agent spawns them
            await asyncio.wait_for(all_ready.wait(), 120)
            await asyncio.gather(*syncs)
        finally:
            stop.set()
            await loop
            await asyncio.gather(*(mgr.delete_pod(w.pod, 0) for w in list(mgr.pods.values())))
            await mgr.remove_orphans(set())
    if reports is not None:
        reports.append(sent[0])
    return [ready[p["metadata"]["uid"]] - t0 for p in pods]


def figures(lat: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(lat) * 1000, 1), "max_ms": round(max(lat) * 1000, 1)}


def machine() -> dict[str, Any]:
    return {
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


async def main(
    n: int, rounds: int, image: str, floor_only: bool = False, parallel: int | None = None
) -> dict[str, Any]:
    docker = DockerAdapter(workers=max(8, 2 * n))  # the floor's own calls must not queue on threads
    kedge_docker = DockerAdapter()
    per: list[dict[str, Any]] = []
    reports: list[int] = []
    load = [os.getloadavg()[0]]
    try:
        await kedge_round(kedge_docker, 1, image, parallel)  # warm-up, unmeasured (imports the sandbox image)
        await floor_round(docker, 1, image)
        for r in range(rounds):
            row: dict[str, Any] = {}
            order = ["floor", "kedge"] if r % 2 == 0 else ["kedge", "floor"]
            for what in order[:1] if floor_only else order:
                if what == "floor":
                    row["floor"] = figures(await floor_round(docker, n, image))
                else:
                    row["kedge"] = figures(await kedge_round(kedge_docker, n, image, parallel, reports))
            if not floor_only:
                row["ratio_p50"] = round(row["kedge"]["p50_ms"] / row["floor"]["p50_ms"], 2)
                row["ratio_max"] = round(row["kedge"]["max_ms"] / row["floor"]["max_ms"], 2)
            per.append(row)
            load.append(os.getloadavg()[0])
    finally:
        await docker.close()
        await kedge_docker.close()

    def med(*path: str) -> float:
        vals = []
        for row in per:
            v: Any = row
            for p in path:
                v = v[p]
            vals.append(v)
        return round(statistics.median(vals), 2 if path[0].startswith("ratio") else 1)

    out: dict[str, Any] = {
        "bench": "pod_latency",
        "mode": f"concurrent ({n} pods at once; create -> Running, median of {rounds} rounds)",
        "pods_at_once": n,
        "rounds": rounds,
        "floor_p50_ms": med("floor", "p50_ms"),
        "floor_max_ms": med("floor", "max_ms"),
    }
    if not floor_only:
        out |= {
            "kedge_p50_ms": med("kedge", "p50_ms"),
            "kedge_max_ms": med("kedge", "max_ms"),
            "ratio_p50": med("ratio_p50"),
            "ratio_max": med("ratio_max"),
            "parallel": parallel if parallel is not None else "default",
            "podpatches_per_pod": round(statistics.median(reports) / n, 2),
        }
    return out | {
        "per_round": per,
        "edgecore": "not in this mode (kedge's pod manager in-process): --e2e measures a real edgecore"
        " in the same rounds when KEDGE_BENCH_EDGECORE_KUBECONFIG/_NODE name one",
        **machine(),
        "load_avg_1m_range": [round(min(load), 2), round(max(load), 2)],
        "image": image,
    }
