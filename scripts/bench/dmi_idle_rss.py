"""Idle edge memory with DMI, interleaved between kedge trees or builds: off / on without a mapper / on
with a registered mapper.

Starts the real cloud (join_time.py's), installs KubeEdge's Device CRDs, joins one edge with its broker
on a free port and 100 Devices of protocol ``bench``, then for ``--runs`` rounds and each tree given
(``NAME=COMMAND``, the command that runs `kedge`, e.g. ``after=dist/kedge`` or
``before=env PYTHONPATH=/path/to/old/checkout .venv/bin/python -P -m kubeedge_cli``), all on the same
edge root and cache: the edge restarted (`edge run --no-pods`) with DMI off; with DMI on and no mapper
registered (the cache's mapper records cleared first); and, after one MapperRegister (grpcio, withData)
to a mapper socket nobody serves, restarted again — so the cache names a registered mapper and its link
is running. Each time VmRSS of the edge's processes ``--settle`` seconds after its 100 devices are
served. Prints one JSON line: runs and medians per tree and state, machine facts.

    .venv/bin/python scripts/bench/dmi_idle_rss.py [--runs 3] [--settle 15] NAME=COMMAND ...
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts" / "bench"))

from join_time import cloud, machine_facts, reset  # noqa: E402
from twin import device_edge, kubectl, objects, restart_edge, rss_mb, status, wait  # noqa: E402

from runtime.edge.devices.dmi import api_pb2 as pb  # noqa: E402
from tests.dmi import api_pb2_grpc as rpc  # noqa: E402

NODE, N = "bench-dmi-rss", 100


def stop_edge(root: Path) -> None:
    pid_file = root / "run" / "kedge" / "edge.pid"
    if pid_file.exists():
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    while pid_file.exists():
        time.sleep(0.1)


def forget_mappers(root: Path) -> None:
    for db_path in root.rglob("cache.db"):
        with sqlite3.connect(db_path) as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name='dmi_mappers'").fetchone():
                db.execute("DELETE FROM dmi_mappers")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--settle", type=float, default=15.0)
    p.add_argument("trees", nargs="+", metavar="NAME=COMMAND")
    args = p.parse_args()
    trees = {t.split("=", 1)[0]: shlex.split(t.split("=", 1)[1]) for t in args.trees}
    sock_dir = Path(tempfile.mkdtemp(prefix="kdmi-rss-", dir="/tmp"))
    sock = sock_dir / "dmi.sock"
    off = ["mqtt.port=0"]
    on = [*off, "dmi.enabled=true", f"dmi.socket={sock}"]
    runs: dict[str, list[float]] = {}

    def measure(root: Path, kedge: list[str], sets: list[str], key: str) -> None:
        restart_edge(root, sets, kedge)
        if sets is on:
            wait(lambda: ((status(root).get("devices") or {}).get("dmi") or {}).get("serving"), 60, "DMI")
        wait(lambda: len((status(root).get("devices") or {}).get("devices") or []) == N, 60, f"{N} devices")
        time.sleep(args.settle)
        runs.setdefault(key, []).append(rss_mb(root))

    with tempfile.TemporaryDirectory(prefix="kedge-dmi-rss-") as tmp, cloud(Path(tmp)) as info:
        root = device_edge(info, Path(tmp) / "edge", NODE)
        restart_edge(root, off)
        wait(lambda: (status(root).get("devices") or {}).get("broker"), 60, "embedded broker")
        kubectl(
            info["kubeconfig"],
            "apply",
            "-f",
            "-",
            stdin=objects(N, protocol="bench", setpoint=False, node=NODE),
        )
        wait(lambda: len((status(root).get("devices") or {}).get("devices") or []) == N, 120, f"{N} devices")
        for _ in range(args.runs):
            for name, kedge in trees.items():
                stop_edge(root)
                forget_mappers(root)
                measure(root, kedge, off, f"{name}/dmi_off")
                measure(root, kedge, on, f"{name}/dmi_on_no_mapper")
                mapper = pb.MapperInfo(
                    name="rss", protocol="bench", address=str(sock_dir / "none.sock").encode()
                )
                with grpc.insecure_channel(f"unix:{sock}") as channel:
                    rpc.DeviceManagerServiceStub(channel).MapperRegister(
                        pb.MapperRegisterRequest(withData=True, mapper=mapper), timeout=10
                    )
                measure(root, kedge, on, f"{name}/dmi_on_mapper_registered")
        stop_edge(root)
        reset(root)
    out = {"benchmark": "dmi_idle_rss", "devices": N, "settle_s": args.settle,
           "vmrss_mb": {k: {"runs": v, "median": statistics.median(v)} for k, v in runs.items()}}  # fmt: skip
    out.update(machine_facts())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
