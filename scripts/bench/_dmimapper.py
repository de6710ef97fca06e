"""Load for scripts/bench/dmi.py: one mapper (grpc.aio, the generated stubs) reporting for N devices.

Registers with the edge's DMI socket (withData), then every device sends ``ReportDeviceStatus``
(temperature, FLOAT) ``--hz`` times a second on a fixed schedule for ``--seconds``; the answer comes
after the twin store committed the value, so each call's round trip is "report → twin stored".
Prints one JSON line: calls sent/answered/failed (by status code), achieved rate, p50/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runtime.edge.devices.dmi import api_pb2 as pb
from tests.dmi import api_pb2_grpc as rpc


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dmi", required=True)
    p.add_argument("--protocol", default="bench")
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--hz", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    channel = grpc.aio.insecure_channel(f"unix:{args.dmi}")
    stub = rpc.DeviceManagerServiceStub(channel)
    info = pb.MapperInfo(name="bench-mapper", protocol=args.protocol, address=b"/nonexistent/bench.sock")
    got = await stub.MapperRegister(pb.MapperRegisterRequest(withData=True, mapper=info), timeout=5)
    devices = [(d.namespace, d.name) for d in got.deviceList][: args.devices]
    lat: list[float] = []
    codes: dict[str, int] = {}
    sent = 0
    period = 1.0 / args.hz
    t0 = time.monotonic() + 0.2

    async def device(i: int, ns: str, name: str) -> None:
        nonlocal sent
        k = 0
        start = t0 + (i / len(devices)) * period  # spread over the period
        while True:
            at = start + k * period
            if at - t0 >= args.seconds:
                return
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            req = pb.ReportDeviceStatusRequest(deviceName=name, deviceNamespace=ns)
            tw = req.reportedDevice.twins.add(propertyName="temperature")
            tw.reported.value = f"{20 + (k % 100) / 10:.1f}"
            tw.reported.metadata.update({"type": "float", "timestamp": str(int(time.time() * 1000))})
            sent += 1
            began = time.perf_counter()
            try:
                await stub.ReportDeviceStatus(req, timeout=10)
                lat.append((time.perf_counter() - began) * 1000)
            except grpc.aio.AioRpcError as exc:
                codes[exc.code().name] = codes.get(exc.code().name, 0) + 1
            k += 1

    began = time.monotonic()
    await asyncio.gather(*(device(i, ns, n) for i, (ns, n) in enumerate(devices)))
    wall = time.monotonic() - began
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 100 else [float("nan")] * 99
    print(json.dumps({
        "devices": len(devices), "hz": args.hz, "seconds": args.seconds, "sent": sent, "answered": len(lat),
        "failed": codes, "rate_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(q[49], 2), "p99_ms": round(q[98], 2), "max_ms": round(lat[-1], 2) if lat else None,
    }))  # fmt: skip
    await channel.close()


if __name__ == "__main__":
    asyncio.run(main())
