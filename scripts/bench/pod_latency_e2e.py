"""End-to-end pod start latency (issue 9), printed as one JSON line (design.md §8).

Pod created via the API (POST returns) → (a) its app container started in Docker (docker `start`
event) and (b) the pod Running with Ready=True as seen by a watch on the API server. N pods, created one
after another (each waits for the previous); p50/p99 over N. The path is the whole one: the embedded
scheduler binds the pod, the cloud's edge controller sends it down the websocket, the edge caches it,
the pod manager starts sandbox + container on Docker, the status goes up as a podpatch.

By default it starts its own one-machine kedge under a temporary root exactly as the e2e tests do
(tests/fixtures/e2e.py: `kedge init --embedded`, `kedge token create`, `kedge join`), and resets it at
the end. `--kubeconfig K --node N` measures an existing cluster instead (e.g. the quickstart's).

    .venv/bin/python scripts/bench/pod_latency_e2e.py --pods 100
    .venv/bin/python scripts/bench/pod_latency.py --e2e --pods 100      # same thing
    .venv/bin/python scripts/bench/pod_latency.py --e2e --concurrent 10 --rounds 5   # N POSTed at once
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
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import docker

from runtime.kube.client import KubeClient, make_client
from runtime.kube.resources import PODS

NS = "default"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def ready(pod: dict[str, Any]) -> bool:
    st = pod.get("status") or {}
    conds = st.get("conditions") or []
    return st.get("phase") == "Running" and any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


class DockerStarts:
    """Docker `create`/`start` events of the node's containers → pod uid → first start time of its app
    container (`times`), of its sandbox (`sandbox`), and first (kind, event) times (`seen`); read on a
    thread."""

    def __init__(self, client: docker.DockerClient, node: str, loop: asyncio.AbstractEventLoop) -> None:
        self.times: dict[str, float] = {}
        self.sandbox: dict[str, float] = {}
        self.seen: dict[tuple[str, str, str], float] = {}  # (uid, kind, event) -> first time
        self.changed = asyncio.Event()
        self._loop = loop
        filters = {"type": "container", "event": ["create", "start"], "label": [f"io.kedge.node={node}"]}
        self._stream = client.events(decode=True, filters=filters)
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for ev in self._stream:
                attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                kind, now = attrs.get("io.kedge.container.kind"), time.perf_counter()
                uid = attrs.get("io.kedge.pod.uid", "")
                self._loop.call_soon_threadsafe(self.seen.setdefault, (uid, kind, ev.get("status")), now)
                if ev.get("status") != "start":
                    continue
                if kind == "app":
                    self._loop.call_soon_threadsafe(self._record, uid, now)
                elif kind == "sandbox":
                    self._loop.call_soon_threadsafe(self.sandbox.setdefault, uid, now)
        except Exception:  # the stream closes at the end
            pass

    def _record(self, uid: str, t: float) -> None:
        self.times.setdefault(uid, t)
        self.changed.set()

    def close(self) -> None:
        self._stream.close()


def bench_pod(run: str, i: int, node: str, image: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"lat-{run}-{i}", "labels": {"kedge-bench": run}},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "containers": [{"name": "app", "image": image, "imagePullPolicy": "Never",
                            "command": ["sleep", "3600"]}],
        },
    }  # fmt: skip


async def watch_ready(
    kube: KubeClient, label: str, api_ready: dict[str, float], arrived: asyncio.Event
) -> None:
    """uid -> first time the pod is Running+Ready in a watch of the pods labelled `label`."""
    while True:
        try:
            async for ev in kube.watch_stream(PODS, namespace=NS, labels=label, timeout_seconds=600):
                uid = ev.object.get("metadata", {}).get("uid", "")
                if ev.type == "MODIFIED" and ready(ev.object) and uid not in api_ready:
                    api_ready[uid] = time.perf_counter()
                    arrived.set()
        except Exception:  # a watch that ends early is simply reopened
            await asyncio.sleep(0.1)


async def api_batch(kube: KubeClient, node: str, n: int, image: str) -> list[float]:
    """N pods POSTed at once to `node`; seconds from the POSTs to each Running+Ready in a watch; then
    the pods are deleted and gone from the API."""
    run = uuid.uuid4().hex[:6]
    label = f"kedge-bench={run}"
    api_ready: dict[str, float] = {}
    arrived = asyncio.Event()
    watcher = asyncio.create_task(watch_ready(kube, label, api_ready, arrived))
    await asyncio.sleep(0.5)  # the watch is open
    try:
        t0 = time.perf_counter()
        made = await asyncio.gather(
            *(kube.create(PODS, bench_pod(run, i, node, image), namespace=NS) for i in range(n))
        )
        uids = [p["metadata"]["uid"] for p in made]
        while not all(u in api_ready for u in uids):
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 120)
        return [api_ready[u] - t0 for u in uids]
    finally:
        watcher.cancel()
        await kube.delete_collection(PODS, namespace=NS, labels=label)
        for _ in range(600):
            if not (await kube.list(PODS, namespace=NS, labels=label)).items:
                break
            await asyncio.sleep(0.2)


def edgecore_target() -> tuple[Path, str] | None:
    """A cluster whose node runs the real edgecore, when the environment names one (else None)."""
    kc, node = os.environ.get("KEDGE_BENCH_EDGECORE_KUBECONFIG"), os.environ.get("KEDGE_BENCH_EDGECORE_NODE")
    return (Path(kc), node) if kc and node else None


async def measure_concurrent(kube: KubeClient, node: str, n: int, rounds: int, image: str) -> dict[str, Any]:
    """`rounds` times: N pods POSTed at once → each Running+Ready in the API, then (same process, right
    after) N pods on Docker alone at once (the floor), and the same N against the real edgecore when
    KEDGE_BENCH_EDGECORE_KUBECONFIG/_NODE name one; per round p50/max; medians printed."""
    from pod_latency_concurrent import floor_round

    from runtime.edge.pods.adapter import DockerAdapter

    floor_docker = DockerAdapter(workers=max(8, 2 * n))
    target = edgecore_target()
    edgecore = make_client(target[0]) if target else None
    per: list[dict[str, float]] = []
    try:
        for _ in range(rounds):
            runs = {"kedge": await api_batch(kube, node, n, image)}
            drained(node)
            runs["floor"] = await floor_round(floor_docker, n, image)
            if edgecore is not None and target is not None:
                ec_image = os.environ.get("KEDGE_BENCH_EDGECORE_IMAGE", image)  # present on that node
                runs["edgecore"] = await api_batch(edgecore, target[1], n, ec_image)
            row = {}
            for what, lat in runs.items():
                row[f"{what}_p50_ms"] = round(statistics.median(lat) * 1000, 1)
                row[f"{what}_max_ms"] = round(max(lat) * 1000, 1)
            per.append(row)
    finally:
        await floor_docker.close()
        if edgecore is not None:
            await edgecore.close()
    med = {k: round(statistics.median(row[k] for row in per), 1) for k in per[0]}
    ratios = {
        f"ratio_{other}_{q}": round(
            statistics.median(r[f"kedge_{q}_ms"] / r[f"{other}_{q}_ms"] for r in per), 2
        )
        for other in ("floor", "edgecore")
        if f"{other}_p50_ms" in per[0]
        for q in ("p50", "max")
    }
    return {
        "pods_at_once": n,
        "rounds": rounds,
        **med,
        **ratios,
        "edgecore": "measured in the same rounds (KEDGE_BENCH_EDGECORE_*)"
        if target
        else "absent: set KEDGE_BENCH_EDGECORE_KUBECONFIG and KEDGE_BENCH_EDGECORE_NODE to a cluster whose"
        " node runs the real edgecore to measure it in the same rounds",
        "per_round": per,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


async def measure(
    kube: KubeClient, dock: docker.DockerClient, node: str, n: int, image: str
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    label = f"kedge-bench={run}"
    api_ready: dict[str, float] = {}
    bound: dict[str, float] = {}
    arrived = asyncio.Event()

    async def watch() -> None:
        while True:
            try:
                async for ev in kube.watch_stream(PODS, namespace=NS, labels=label, timeout_seconds=600):
                    uid = ev.object.get("metadata", {}).get("uid", "")
                    if (ev.object.get("spec") or {}).get("nodeName"):
                        bound.setdefault(uid, time.perf_counter())
                    if ev.type == "MODIFIED" and ready(ev.object) and uid not in api_ready:
                        api_ready[uid] = time.perf_counter()
                        arrived.set()
            except Exception:  # a watch that ends early is simply reopened
                await asyncio.sleep(0.1)

    starts = DockerStarts(dock, node, asyncio.get_running_loop())
    watcher = asyncio.create_task(watch())
    await asyncio.sleep(1.0)  # watch and event stream open
    to_docker: list[float] = []
    to_api: list[float] = []
    to_bound: list[float] = []
    to_sandbox: list[float] = []
    steps: dict[str, list[float]] = {"sandbox_create": [], "app_create": []}
    try:
        for i in range(n):
            pod = bench_pod(run, i, node, image)
            t0 = time.perf_counter()
            uid = (await kube.create(PODS, pod, namespace=NS))["metadata"]["uid"]
            deadline = t0 + 60
            while uid not in api_ready or uid not in starts.times:
                arrived.clear()
                starts.changed.clear()
                if time.perf_counter() > deadline:
                    raise SystemExit(f"pod {pod['metadata']['name']} not Running after 60 s")
                waits = [asyncio.ensure_future(e.wait()) for e in (arrived, starts.changed)]
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
            to_docker.append(starts.times[uid] - t0)
            to_api.append(api_ready[uid] - t0)
            to_bound.append(bound.get(uid, api_ready[uid]) - t0)
            to_sandbox.append(starts.sandbox.get(uid, starts.times[uid]) - t0)
            for step in steps:
                kind, _, event = step.partition("_")
                if (uid, kind, event) in starts.seen:
                    steps[step].append(starts.seen[uid, kind, event] - t0)
    finally:
        watcher.cancel()
        starts.close()
        await kube.delete_collection(PODS, namespace=NS, labels=label)
    return {
        "pods": len(to_api),
        "p50_ms": round(statistics.median(to_api) * 1000, 1),
        "p99_ms": round(pct(to_api, 99) * 1000, 1),
        "max_ms": round(max(to_api) * 1000, 1),
        "docker_start_p50_ms": round(statistics.median(to_docker) * 1000, 1),
        "docker_start_p99_ms": round(pct(to_docker, 99) * 1000, 1),
        # where the time goes, p50 of POST -> bound by the scheduler, sandbox created (docker `create`
        # event), sandbox started, app container created (the app start is docker_start above)
        "bound_p50_ms": round(statistics.median(to_bound) * 1000, 1),
        "sandbox_create_p50_ms": round(statistics.median(steps["sandbox_create"] or [0]) * 1000, 1),
        "sandbox_start_p50_ms": round(statistics.median(to_sandbox) * 1000, 1),
        "app_create_p50_ms": round(statistics.median(steps["app_create"] or [0]) * 1000, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


async def bench(kubeconfig: Path, node: str, n: int, image: str, at_once: int, rounds: int) -> dict[str, Any]:
    kube = make_client(kubeconfig)
    dock = docker.from_env(timeout=60)
    try:
        if at_once:
            return await measure_concurrent(kube, node, at_once, rounds, image)
        return await measure(kube, dock, node, n, image)
    finally:
        await kube.close()
        dock.close()


def drained(node: str, timeout: float = 120) -> None:
    """Wait for the containers of the deleted pods to go, so a re-run (or the teardown) starts clean."""
    dock = docker.from_env(timeout=60)
    end = time.monotonic() + timeout
    filters = {"label": [f"io.kedge.node={node}", "io.kedge.container.kind=app"]}
    while time.monotonic() < end and dock.containers.list(all=True, sparse=True, filters=filters):
        time.sleep(0.5)
    dock.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--image", default="kedge.local/busybox:1")
    ap.add_argument("--kubeconfig", type=Path, help="an existing cluster (else one is started)")
    ap.add_argument("--node", help="the edge node of --kubeconfig's cluster to schedule on")
    ap.add_argument("--concurrent", type=int, default=0, help="N pods at once, beside Docker alone")
    ap.add_argument("--rounds", type=int, default=5, help="with --concurrent: rounds (medians printed)")
    args = ap.parse_args(argv)
    started = time.time()
    teardown = None
    if args.kubeconfig:
        if not args.node:
            ap.error("--kubeconfig needs --node")
        kubeconfig, node, how = args.kubeconfig, args.node, "existing cluster"
    else:
        from tests.fixtures.e2e import start_e2e

        env, teardown = start_e2e(Path(tempfile.mkdtemp(prefix="kedge-bench-e2e-")), docker.from_env())
        kubeconfig, node = env.cloud.kubeconfig, env.edge.node
        how = "kedge init --embedded + kedge join (tests/fixtures/e2e.py), this machine"
    try:
        figures = asyncio.run(bench(kubeconfig, node, args.pods, args.image, args.concurrent, args.rounds))
        drained(node)
    finally:
        if teardown is not None:
            teardown()
    return {
        "bench": "pod_latency",
        "mode": "e2e (POST pod -> docker start / Running+Ready in the API)"
        + (f", {args.concurrent} pods at once beside Docker alone" if args.concurrent else ""),
        "setup": how,
        **figures,
        "image": args.image,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "wall_s": round(time.time() - started, 1),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
