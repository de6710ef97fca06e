"""What a DMI gRPC library costs in memory: grpcio's aio server against grpclib's, on a unix socket.

Each variant runs in a fresh interpreter (three times; the median is reported): ``base`` imports the
DMI messages (protobuf, api_pb2) only; ``grpcio`` adds grpc, its stubs (tests/dmi/api_pb2_grpc.py)
and a grpc.aio server on a unix socket; ``grpclib`` adds grpclib, its stubs (api_grpc.py) and a
grpclib Server on a unix socket. Each then makes one call to its own server (so the client side is
loaded too, as the edge's mapper links load it), waits 1 s and reads its VmRSS and thread count.
Prints one JSON line with machine facts. Decided issue 18's switch to grpclib (docs/benchmarks.md).

    .venv/bin/python scripts/bench/dmi_rss.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

VARIANT = r"""
import asyncio, gc, os, sys, tempfile, threading
from runtime.edge.devices.dmi import api_pb2 as pb

async def main(variant):
    path = os.path.join(tempfile.mkdtemp(prefix="kdmi-rss-"), "dmi.sock")
    request = pb.ReportDeviceStatesRequest(deviceName="x", state="ok")
    if variant == "grpcio":
        import grpc
        from tests.dmi import api_pb2_grpc as rpc
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        rpc.add_DeviceManagerServiceServicer_to_server(rpc.DeviceManagerServiceServicer(), server)
        server.add_insecure_port(f"unix:{path}")
        await server.start()
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            try:
                await rpc.DeviceManagerServiceStub(channel).ReportDeviceStates(request)
            except grpc.aio.AioRpcError:
                pass  # UNIMPLEMENTED: the call's round trip is what counts
    elif variant == "grpclib":
        from grpclib.client import Channel
        from grpclib.const import Status
        from grpclib.exceptions import GRPCError
        from grpclib.server import Server
        from runtime.edge.devices.dmi import api_grpc as rpc

        class Unimplemented(rpc.DeviceManagerServiceBase):
            async def MapperRegister(self, stream):
                raise GRPCError(Status.UNIMPLEMENTED)

            ReportDeviceStatus = ReportDeviceStates = MapperRegister

        server = Server([Unimplemented()])
        await server.start(path=path)
        channel = Channel(path=path)
        try:
            await rpc.DeviceManagerServiceStub(channel).ReportDeviceStates(request)
        except GRPCError:
            pass
        channel.close()
    await asyncio.sleep(1.0)
    gc.collect()
    rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:"))
    print(rss / 1024, threading.active_count(), len(os.listdir("/proc/self/task")))

asyncio.run(main(sys.argv[1]))
"""


def main() -> None:
    out: dict[str, object] = {"benchmark": "dmi_rss"}
    medians: dict[str, float] = {}
    for variant in ("base", "grpcio", "grpclib"):
        runs = []
        for _ in range(3):
            r = subprocess.run([sys.executable, "-c", VARIANT, variant], capture_output=True, text=True,
                               check=True, cwd=REPO, timeout=60)  # fmt: skip
            rss, py_threads, os_threads = r.stdout.split()
            runs.append(float(rss))
        medians[variant] = round(statistics.median(runs), 1)
        out[variant] = {"rss_mb": medians[variant], "runs_mb": [round(x, 1) for x in runs],
                        "python_threads": int(py_threads), "os_threads": int(os_threads)}  # fmt: skip
    out["grpcio_over_base_mb"] = round(medians["grpcio"] - medians["base"], 1)
    out["grpclib_over_base_mb"] = round(medians["grpclib"] - medians["base"], 1)
    out["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                      "kernel": platform.release(), "loadavg_1m": round(os.getloadavg()[0], 2)}  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
