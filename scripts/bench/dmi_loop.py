"""DMI's report path in one process: loop CPU per ReportDeviceStatus, and its round trip, per gRPC server.

A DevicePlane of node n1 with 100 Devices of protocol ``bench`` (one DeviceModel) and DMI on runs on
its own thread, on asyncio's own loop as in the edge (runtime/eventloop.py; ``--loop uvloop`` for
uvloop) but without the cloud, the hub or the
rest of the edge; the mapper (scripts/bench/_dmimapper.py, grpcio) reports for the 100 devices at
10 Hz each (1000 reports/s) from its own process. Printed per run (one JSON line): the loop thread's
CPU and the process's CPU per answered report (µs), the round trip report → twin stored p50/p99 (the
mapper's), the loop's lag p99 (how late a 5 ms sleep wakes), and per report: twin-store commits,
socket reads (``data_received``) and socket writes (grpclib only).

- ``--server grpcio`` swaps grpclib for a grpc.aio server on the same handlers (the one of
  scripts/bench/_grpcio_edge.py, bench-only);
- ``--floor`` answers every ReportDeviceStatus at once, unchecked and unstored (bench-only: what the
  gRPC library alone costs per report, the floor under kedge's handler);
- ``--repo DIR`` runs another checkout's runtime/ (e.g. a worktree of main), so before/after pairs
  run side by side;
- ``--burners N`` runs N busy-looping processes during the load: a machine loaded by others,
  reproducibly (each competes for a core as one more runnable thread does);
- ``--profile FILE`` records the run with py-spy (samples while the GIL is held; FILE.txt: collapsed
  stacks, else an SVG flame graph); py-spy is not a project dependency: ``.venv/bin/pip install py-spy``.

    .venv/bin/python scripts/bench/dmi_loop.py [--server grpclib|grpcio] [--seconds 15] [--floor]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
N, HZ = 100, 10.0


def thread_cpu(tid: int) -> float:
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def objects() -> dict[str, list[Any]]:
    props = [{"name": "temperature", "type": "FLOAT", "accessMode": "ReadOnly"}]
    model = {"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "DeviceModel",
             "metadata": {"name": "bench-model", "namespace": "default"},
             "spec": {"protocol": "bench", "properties": props}}  # fmt: skip
    devices = [{"apiVersion": "devices.kubeedge.io/v1beta1", "kind": "Device",
                "metadata": {"name": f"bench-dev-{i:03d}", "namespace": "default"},
                "spec": {"deviceModelRef": {"name": "bench-model"}, "nodeName": "n1",
                         "protocol": {"protocolName": "bench"},
                         "properties": [{"name": "temperature", "reportToCloud": True}]}}
               for i in range(N)]  # fmt: skip
    return {"device": devices, "devicemodel": [model]}


def swap_grpcio() -> None:
    """The edge's DMI served by grpc.aio (scripts/bench/_grpcio_edge.py's server), from the start."""
    sys.path.insert(1, str(HERE))
    import _grpcio_edge

    from runtime.edge.devices.dmi import server, service

    server.serve = _grpcio_edge.serve  # type: ignore[assignment]
    service.knock = _grpcio_edge.at_once  # type: ignore[assignment]


def floor() -> None:
    """Every ReportDeviceStatus answered at once: no checks, no twin store (the library's floor)."""
    from runtime.edge.devices.dmi import api_pb2 as pb
    from runtime.edge.devices.dmi import server

    async def answer(_self: Any, _request: Any) -> Any:
        return pb.ReportDeviceStatusResponse()

    server.ManagerService.report_device_status = answer  # type: ignore[method-assign]


def count_io(counts: dict[str, int]) -> None:
    """Count grpclib's socket reads (``data_received``) and the real writes of ``OneWritePerPass``."""
    from runtime.edge.devices.dmi import server

    received, flush = server.Coalesced.data_received, server.OneWritePerPass.flush

    def counted_received(self: Any, data: bytes) -> None:
        counts["reads"] += 1
        received(self, data)

    def counted_flush(self: Any) -> None:
        counts["writes"] += bool(self.pending)
        flush(self)

    server.Coalesced.data_received = counted_received  # type: ignore[method-assign]
    server.OneWritePerPass.flush = counted_flush  # type: ignore[method-assign]


class Edge:
    """The DevicePlane with DMI on a loop thread of its own."""

    def __init__(self, folder: Path, loop: str) -> None:
        from runtime.config import DmiSection, MqttSection
        from runtime.edge.devices.plane import DevicePlane

        objs = objects()

        async def cached(typ: str) -> list[Any]:
            return list(objs.get(typ, []))

        self.sock = folder / "dmi.sock"
        if loop == "uvloop":
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.lags: list[float] = []
        self.tid = 0
        started = threading.Event()

        def run() -> None:
            self.tid = threading.get_native_id()
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait()
        self.plane = DevicePlane(MqttSection(port=0), "n1", folder / "cache.db", cached=cached,
                                 dmi=DmiSection(enabled=True, socket=str(self.sock)))  # fmt: skip
        self.stop = asyncio.Event()
        self.task = self.call(self._begin())
        while not self.sock.exists():
            time.sleep(0.05)

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _begin(self) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self.plane.run(self.stop))
        await asyncio.wait_for(self.plane.ready.wait(), 20)
        return task

    async def lag(self, until: float) -> None:
        while time.monotonic() < until:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append((time.perf_counter() - t - 0.005) * 1000)

    def close(self) -> None:
        async def end() -> None:
            self.stop.set()
            await asyncio.wait_for(self.task, 20)

        self.call(end())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def measure(edge: Edge, seconds: float, profile: str, burners: int) -> dict[str, Any]:
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(burners)]
    spy = None
    if profile:
        fmt = "raw" if profile.endswith(".txt") else "flamegraph"
        cmd = ["py-spy", "record", "-o", profile, "-p", str(os.getpid()), "-r", "200", "--gil", "-f", fmt]
        spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert edge.plane.store is not None
    commits0, cpu0, loop0, t0 = (
        edge.plane.store.commits,
        time.process_time(),
        thread_cpu(edge.tid),
        time.monotonic(),
    )
    lagger = asyncio.run_coroutine_threadsafe(edge.lag(t0 + seconds + 1.0), edge.loop)
    done = subprocess.run([sys.executable, str(HERE / "_dmimapper.py"), "--dmi", str(edge.sock),
                           "--devices", str(N), "--hz", str(HZ), "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=seconds + 120)  # fmt: skip
    wall, cpu, loop_cpu = time.monotonic() - t0, time.process_time() - cpu0, thread_cpu(edge.tid) - loop0
    commits = edge.plane.store.commits - commits0
    for proc in spin:
        proc.kill()
        proc.wait()
    if spy is not None:
        spy.send_signal(2)
        spy.wait(60)
    lagger.result(30)
    if done.returncode != 0:
        sys.exit(f"mapper failed: {done.stderr[-2000:]}")
    load = json.loads(done.stdout.strip().splitlines()[-1])
    answered = max(1, int(load["answered"]))
    lags = sorted(edge.lags)
    return {
        **{k: load[k] for k in ("answered", "failed", "rate_per_s", "p50_ms", "p99_ms", "max_ms")},
        "loop_us_per_report": round(loop_cpu / answered * 1e6),
        "process_us_per_report": round(cpu / answered * 1e6),
        "process_cpu_pct": round(cpu / wall * 100, 1),
        "loop_lag_p99_ms": round(lags[int(len(lags) * 0.99)], 1) if lags else None,
        "commits_per_report": round(commits / answered, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", choices=("grpclib", "grpcio"), default="grpclib")
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--repo", default=str(HERE.parents[1]))
    p.add_argument("--profile", default="")
    p.add_argument("--floor", action="store_true")
    p.add_argument("--burners", type=int, default=0)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = p.parse_args()
    sys.path.insert(0, str(Path(args.repo).resolve()))
    counts = {"reads": 0, "writes": 0}
    if args.server == "grpcio":
        swap_grpcio()
    else:
        count_io(counts)
    if args.floor:
        floor()
    folder = Path(tempfile.mkdtemp(prefix="kdmi-loop-", dir="/tmp"))
    try:
        edge = Edge(folder, args.loop)
        out = measure(edge, args.seconds, args.profile, args.burners)
        edge.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    answered = max(1, int(out["answered"]))
    print(json.dumps({
        "bench": "dmi_loop", "server": args.server, "loop": args.loop, "floor": args.floor,
        "burners": args.burners,
        "repo": args.repo,
        "seconds": args.seconds, **out,
        "reads_per_report": round(counts["reads"] / answered, 2),
        "writes_per_report": round(counts["writes"] / answered, 2),
        "loadavg_1m": round(os.getloadavg()[0], 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
