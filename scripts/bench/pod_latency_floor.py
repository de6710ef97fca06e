"""The Docker engine's own floor for a pod start, printed as one JSON line (issue 9).

The same sandbox and app container configs the pod manager produces (runtime/edge/pods/translate.py),
sent straight to the engine with no kedge in between, in the order the pod manager uses at best: create
the sandbox, start it while the app container is created, then start the app (it joins the sandbox's
network namespace, so it cannot start earlier). What this prints is the least any edge agent on this
Docker engine could take from "pod known" to "app running"; compare pod_latency.py's local and e2e
figures with it.

    .venv/bin/python scripts/bench/pod_latency.py --floor --pods 100
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import time
import uuid
from typing import Any

from runtime.edge.pods import translate
from runtime.edge.pods.adapter import DockerAdapter


class NoRefs:
    """The pod manager's RefResolver for bench pods: they name no ConfigMap or Secret."""

    async def configmap(self, ns: str, name: str) -> dict[str, Any] | None:
        return None

    async def secret(self, ns: str, name: str) -> dict[str, Any] | None:
        return None

    async def sa_token(
        self, ns: str, sa: str, pod: dict[str, Any], expiration: int, audience: list[str] | None
    ) -> str | None:
        return "token"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def bench_pod(node: str, i: int, image: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"floor-{i}", "namespace": "default", "uid": str(uuid.uuid4())},
        "spec": {
            "containers": [
                {"name": "app", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}
            ],
            "terminationGracePeriodSeconds": 0,
            "nodeName": node,
        },
    }


async def one(docker: DockerAdapter, node: str, pod: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Start one pod's sandbox + app on the engine; the step times (ms) and the container ids."""
    sb_name, sb_cfg, sb_host = translate.sandbox_config(pod, node, 0)
    t0 = time.perf_counter()
    sb = await docker.create(sb_name, host_config=sb_host, **sb_cfg)
    t1 = time.perf_counter()

    async def create_app() -> str:
        c = pod["spec"]["containers"][0]
        name, cfg, host = translate.container_config(
            pod, c, kind="app", node=node, restarts=0, env={}, volumes={}, sandbox_id=sb
        )
        return await docker.create(name, host_config=host, **cfg)

    _, app = await asyncio.gather(docker.start(sb), create_app())
    t2 = time.perf_counter()
    await docker.start(app)
    t3 = time.perf_counter()
    steps = {"sandbox_create": t1 - t0, "sandbox_start": t2 - t1, "app_start": t3 - t2, "total": t3 - t0}
    return {k: v * 1000 for k, v in steps.items()}, [app, sb]


async def main(n: int, image: str) -> dict[str, Any]:
    node = f"floor-{uuid.uuid4().hex[:8]}"
    docker = DockerAdapter()
    steps: dict[str, list[float]] = {}
    made: list[str] = []
    try:
        for i in range(n):
            took, ids = await one(docker, node, bench_pod(node, i, image))
            made += ids
            for k, v in took.items():
                steps.setdefault(k, []).append(v)
    finally:
        for cid in made:
            await docker.remove(cid)
        await docker.close()
    total = steps.get("total", [0.0])
    return {
        "bench": "pod_latency",
        "mode": "floor (Docker alone: sandbox create, start || app create, app start)",
        "pods": len(total),
        "p50_ms": round(statistics.median(total), 1),
        "p99_ms": round(pct(total, 99), 1),
        "max_ms": round(max(total), 1),
        **{f"{k}_p50_ms": round(statistics.median(v), 1) for k, v in steps.items() if k != "total"},
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "image": image,
    }
