#!/usr/bin/env python3
"""Benchmark the embedded control plane's controllers; prints one JSON line (figures + machine facts).

    .venv/bin/python scripts/bench/controlplane.py [--replicas 100] [--nodes 1000] [--idle 30]

Against a `kedge apiserver --in-memory` subprocess, with the controllers (runtime.apiserver.controllers)
in a second subprocess so their CPU is measured alone:
- deploy_to_bound_s: from creating a Deployment of N replicas (3 fake Ready nodes with renewed
  Leases) to every pod bound; bind latency = pod ADDED seen by a watch → pod with nodeName seen,
  p50/p99 over the N pods;
- idle_cpu_pct: controller process CPU (% of one core) over `--idle` seconds while M fake nodes
  renew their Leases every 10 s (targets: 100 pods bound <= 2 s, idle <= 10 % at 1,000 nodes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from _simedge import ready_status  # noqa: E402

from runtime.kube.client import KubeClient, make_client  # noqa: E402
from runtime.kube.resources import DEPLOYMENTS, LEASES, NAMESPACES, NODES, PODS  # noqa: E402
from runtime.kube.watch import watch_with_resume  # noqa: E402


def now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return round(next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024, 1)


async def add_nodes(client: KubeClient, names: list[str], concurrency: int = 16) -> None:
    sem = asyncio.Semaphore(concurrency)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def one(name: str) -> None:
        async with sem:
            await client.create(
                NODES, {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}
            )
            status = {"status": ready_status("8", "16Gi", "KubeletReady", stamp)}
            await client.patch(NODES, name, status, subresource="status", type="strategic")
            lease = {
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now_micro()},
            }
            await client.create(LEASES, lease)

    await asyncio.gather(*(one(n) for n in names))


async def renew_forever(client: KubeClient, names: list[str], every: float) -> None:
    gap = every / max(1, len(names))
    while True:
        for name in names:
            started = time.monotonic()
            await client.patch(
                LEASES, name, {"spec": {"renewTime": now_micro()}}, namespace="kube-node-lease"
            )
            await asyncio.sleep(max(0.0, gap - (time.monotonic() - started)))


async def deploy(client: KubeClient, replicas: int) -> dict[str, Any]:
    ns = "bench"
    await client.create(NAMESPACES, {"metadata": {"name": ns}})
    seen: dict[str, float] = {}
    bound: dict[str, float] = {}
    done = asyncio.Event()

    async def watch() -> None:
        async for _typ, pod in watch_with_resume(client, PODS, namespace=ns):
            if pod is None:
                continue
            name = pod["metadata"]["name"]
            seen.setdefault(name, time.monotonic())
            if pod["spec"].get("nodeName") and name not in bound:
                bound[name] = time.monotonic()
                if len(bound) >= replicas:
                    done.set()

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.3)
    body = {
        "metadata": {"name": "load", "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "load"}},
            "template": {
                "metadata": {"labels": {"app": "load"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }
    t0 = time.monotonic()
    await client.create(DEPLOYMENTS, body)
    await asyncio.wait_for(done.wait(), 120)
    total = time.monotonic() - t0
    watcher.cancel()
    lat = sorted((bound[n] - seen[n]) * 1000 for n in bound)
    return {
        "replicas": replicas,
        "deploy_to_bound_s": round(total, 3),
        "first_pod_seen_s": round(min(seen.values()) - t0, 3),
        "all_pods_seen_s": round(max(seen.values()) - t0, 3),
        "bind_latency_p50_ms": round(statistics.median(lat), 1),
        "bind_latency_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
    }


async def controllers_main(kubeconfig: Path) -> None:
    from runtime.apiserver.controllers.manager import run_controllers

    client = make_client(kubeconfig)
    await run_controllers(client)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kedge-bench-cp-"))
    server = start(
        [
            sys.executable,
            "-m",
            "kubeedge_cli",
            "apiserver",
            "--data-dir",
            str(tmp / "srv"),
            "--port",
            "0",
            "--in-memory",
            "--no-controllers",  # this bench runs and measures the controllers in its own process
        ],
        tmp / "apiserver.log",
    )
    kc = tmp / "srv" / "admin.kubeconfig"
    deadline = time.monotonic() + 30
    while not kc.exists():
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"apiserver did not start; see {tmp / 'apiserver.log'}")
        await asyncio.sleep(0.05)
    ctl_cmd = os.environ.get("KEDGE_BENCH_CONTROLLERS", "")  # debugging: another controllers entry point
    ctl = start(
        [sys.executable, ctl_cmd or __file__, *([] if ctl_cmd else ["--controllers"]), str(kc)],
        tmp / "controllers.log",
    )
    client = make_client(kc)
    renewer: asyncio.Task[None] | None = None
    try:
        workers = [f"worker-{i}" for i in range(3)]
        await add_nodes(client, workers)
        renewer = asyncio.create_task(renew_forever(client, workers, 10.0))
        await asyncio.sleep(2.0)  # controllers listed and watching
        s0, k0 = cpu_seconds(server.pid), cpu_seconds(ctl.pid)
        result = await deploy(client, args.replicas)
        result["deploy_cpu_s"] = {
            "apiserver": round(cpu_seconds(server.pid) - s0, 2),
            "controllers": round(cpu_seconds(ctl.pid) - k0, 2),
        }
        renewer.cancel()
        idle = [f"idle-{i:04d}" for i in range(args.nodes)]
        t_add = time.monotonic()
        await add_nodes(client, idle)
        result["nodes_added_s"] = round(time.monotonic() - t_add, 1)
        renewer = asyncio.create_task(renew_forever(client, idle + workers, 10.0))
        await asyncio.sleep(5.0)  # let the burst of node events settle
        c0, t0 = cpu_seconds(ctl.pid), time.monotonic()
        await asyncio.sleep(args.idle)
        c1, t1 = cpu_seconds(ctl.pid), time.monotonic()
        if ctl.poll() is not None:
            raise SystemExit(f"controllers exited; see {tmp / 'controllers.log'}")
        result |= {
            "idle_nodes": args.nodes,
            "idle_seconds": args.idle,
            "idle_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 2),
        }
        result["controllers_rss_mb"] = rss_mb(ctl.pid)
        return result
    finally:
        if renewer is not None:
            renewer.cancel()
        await client.close()
        for proc in (ctl, server):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--controllers", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.controllers:
        profile = os.environ.get("KEDGE_BENCH_PROFILE")  # write a cProfile of the controllers on SIGTERM
        if profile:
            import cProfile
            import signal

            prof = cProfile.Profile()
            signal.signal(signal.SIGTERM, lambda *_: (prof.disable(), prof.dump_stats(profile), os._exit(0)))
            prof.enable()
        asyncio.run(controllers_main(args.controllers))
        return
    result = asyncio.run(bench(args))
    result |= {
        "bench": "controlplane",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "time": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
