"""Pod start latency, printed as one JSON line (design.md §8).

`--local` (the default) measures the edge's share: PodManager.sync_pod(pod) → the first status with
phase Running and every container ready, on the real Docker engine, for N pods created one after
another (p50/p99 over N). `--e2e` measures issue 9's figure, pod created via the API → Running in the
API, over the whole path (pod_latency_e2e.py), with where the time goes.

    .venv/bin/python scripts/bench/pod_latency.py --pods 100 [--host-network] [--image kedge.local/busybox:1]
    .venv/bin/python scripts/bench/pod_latency.py --e2e --pods 100
    .venv/bin/python scripts/bench/pod_latency.py --floor --pods 100   # Docker alone (pod_latency_floor.py)
    .venv/bin/python scripts/bench/pod_latency.py --concurrent 10 --rounds 5   # N at once, beside the floor
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pod_latency_floor import NoRefs, pct

from runtime.edge.pods import labels
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.manager import PodManager


async def main(n: int, image: str, host_network: bool) -> dict[str, Any]:
    node = f"bench-{uuid.uuid4().hex[:8]}"
    ready: dict[str, float] = {}
    arrived = asyncio.Event()

    async def on_status(pod: dict[str, Any], st: dict[str, Any]) -> None:
        cs = st.get("containerStatuses") or []
        if st["phase"] == "Running" and cs and all(c["ready"] for c in cs):
            ready.setdefault(pod["metadata"]["uid"], time.perf_counter())
            arrived.set()

    docker = DockerAdapter()
    with tempfile.TemporaryDirectory() as tmp:
        mgr = PodManager(docker, node_name=node, state_dir=Path(tmp), refs=NoRefs(), on_status=on_status)
        await mgr.start()
        stop = asyncio.Event()
        loop = asyncio.create_task(mgr.run(stop))
        lat: list[float] = []
        try:
            for i in range(n):
                uid = str(uuid.uuid4())
                pod = {
                    "metadata": {"name": f"bench-{i}", "namespace": "default", "uid": uid},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "command": ["sleep", "3600"],
                            }
                        ],
                        "terminationGracePeriodSeconds": 0,
                        "hostNetwork": host_network,
                    },
                }
                t0 = time.perf_counter()
                await mgr.sync_pod(pod)
                while uid not in ready:
                    arrived.clear()
                    await arrived.wait()
                lat.append(ready[uid] - t0)
        finally:
            stop.set()
            await loop
            for w in list(mgr.pods.values()):
                await mgr.delete_pod(w.pod, 0)
            await mgr.remove_orphans(set())
            await docker.close()
    return {
        "bench": "pod_latency",
        "mode": "local (sync_pod -> Running+Ready status)",
        "pods": n,
        "hostNetwork": host_network,
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(pct(lat, 99) * 1000, 1),
        "max_ms": round(max(lat) * 1000, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "label_selector": labels.selector(node),
    }


if __name__ == "__main__":
    if "--e2e" in sys.argv[1:]:  # the end-to-end mode (API -> Running in the API): pod_latency_e2e.py
        from pod_latency_e2e import main as e2e_main

        print(json.dumps(e2e_main([a for a in sys.argv[1:] if a != "--e2e"])))
        raise SystemExit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--image", default="kedge.local/busybox:1")
    ap.add_argument("--host-network", action="store_true", help="pods without a sandbox")
    ap.add_argument("--floor", action="store_true", help="Docker alone, no kedge (pod_latency_floor.py)")
    ap.add_argument("--concurrent", type=int, default=0, help="N pods at once, kedge beside Docker alone")
    ap.add_argument("--rounds", type=int, default=5, help="with --concurrent: rounds (medians printed)")
    ap.add_argument("--parallel", type=int, default=None, help="with --concurrent: the manager's bound")
    args = ap.parse_args()
    if args.concurrent:  # side by side in one run (pod_latency_concurrent.py)
        from pod_latency_concurrent import main as concurrent_main

        coro = concurrent_main(args.concurrent, args.rounds, args.image, args.floor, args.parallel)
        print(json.dumps(asyncio.run(coro)))
    elif args.floor:  # the engine's own floor, no kedge between (pod_latency_floor.py)
        from pod_latency_floor import main as floor_main

        print(json.dumps(asyncio.run(floor_main(args.pods, args.image))))
    else:
        print(json.dumps(asyncio.run(main(args.pods, args.image, args.host_network))))
