"""`kedge join` to node Ready, first join, printed as one JSON line (design.md §8; target <= 3 s).

Starts the real cloud (`kedge apiserver`, `kedge cloud run` with its bootstrap server, CloudHub and
controllers, a token from `kedge token create`), then times `kedge join` as a user runs it — a fresh
process, preflight, key, CSR, certificate, config, detached `kedge edge run`, until the runtime reports
the node Ready — for N fresh nodes, and resets each.

    .venv/bin/python scripts/bench/join_time.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.fixtures.kube import RestartableApiServer  # noqa: E402
from tests.fixtures.procs import KEDGE, start, stop  # noqa: E402
from tests.fixtures.wait import eventually  # noqa: E402


@contextlib.contextmanager
def cloud(tmp: Path) -> Iterator[dict[str, Any]]:
    """`kedge apiserver` + `kedge cloud run` (bootstrap, CloudHub, controllers) + a token."""
    api = RestartableApiServer(tmp)
    api.start()
    croot = tmp / "cloudroot"
    sets = ["hub.cert_port=0", "hub.websocket_port=0", "hub.bind=127.0.0.1", "metrics_address=127.0.0.1:0",
            "stream.port=0"]  # fmt: skip
    log = tmp / "cloud.log"
    proc = None
    try:
        asyncio.run(_prepare(api.kubeconfig))
        proc = start(
            [
                *KEDGE,
                "cloud",
                "run",
                "--kubeconfig",
                str(api.kubeconfig),
                "--root",
                str(croot),
                *[a for s in sets for a in ("--set", s)],
            ],
            log,
        )
        addresses = croot / "var" / "lib" / "kedge" / "cloud" / "addresses.json"
        addr = eventually(
            lambda: "hub" in (d := json.loads(addresses.read_text())) and d,
            60,
            "hub address",
            proc=proc,
            log=log,
        )
        tok = subprocess.run(
            [*KEDGE, "token", "create", "--kubeconfig", str(api.kubeconfig), "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        port = {k: int(addr[k].rsplit(":", 1)[1]) for k in ("hub", "bootstrap")}
        yield {**port, "token": json.loads(tok.stdout)["token"], "kubeconfig": str(api.kubeconfig)}
    finally:
        if proc is not None:
            stop(proc)
        api.stop()


async def _prepare(kubeconfig: Path) -> None:
    from runtime.kube.client import make_client
    from tests.fixtures.cloudctl import prepare_cluster

    async with make_client(kubeconfig) as client:
        await prepare_cluster(client)


def join(info: dict[str, Any], root: Path, node: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *KEDGE,
            "join",
            "--token",
            info["token"],
            "--server",
            f"127.0.0.1:{info['hub']}",
            "--cert-port",
            str(info["bootstrap"]),
            "--node-name",
            node,
            "--root",
            str(root),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def reset(root: Path) -> None:
    subprocess.run([*KEDGE, "reset", "edge", "--force", "--root", str(root)], capture_output=True, timeout=60)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kedge-join-bench-") as tmp_s, cloud(Path(tmp_s)) as info:
        for i in range(args.runs):
            root = Path(tmp_s) / f"edge{i}"
            t0 = time.perf_counter()
            done = join(info, root, f"bench-join-{i}")
            times.append(time.perf_counter() - t0)
            reset(root)
            if done.returncode != 0:
                sys.exit(f"join failed ({done.returncode}): {done.stderr[-2000:]}")
    print(
        json.dumps(
            {
                "benchmark": "join_time",
                "runs": args.runs,
                "first_join_s": round(times[0], 3),
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "target_s": 3.0,
                "anchor_edgecore_s": 15.0,
                **machine_facts(),
            }
        )
    )


def machine_facts() -> dict[str, Any]:
    """What every bench line carries about where it ran and which kedge."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "loadavg_1m": round(os.getloadavg()[0], 2),
        },
        "kedge": " ".join(KEDGE),
    }


if __name__ == "__main__":
    main()
