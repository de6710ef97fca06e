"""A device plane with DMI on, alone in its own interpreter (for test_dmi_lazy.py): prints which gRPC
modules are loaded once the socket is bound, then again once a mapper made it load gRPC; stops when
its stdin closes."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from runtime.config import DmiSection, MqttSection
from runtime.edge.devices.plane import DevicePlane
from tests.devices.mqttclient import MODEL, device
from tests.fixtures.wait import eventually_async

GRPC = ("grpclib", "h2", "google.protobuf", "runtime.edge.devices.dmi.server")


def loaded() -> list[str]:
    return [m for m in GRPC if m in sys.modules]


async def main(db: Path, sock: Path) -> None:
    objects = {"device": [device()], "devicemodel": [MODEL]}

    async def cached(typ: str) -> list[object]:
        return list(objects.get(typ, []))

    plane = DevicePlane(
        MqttSection(port=0), "n1", db, cached=cached, dmi=DmiSection(enabled=True, socket=str(sock))
    )
    stop = asyncio.Event()
    task = asyncio.ensure_future(plane.run(stop))
    await eventually_async(lambda: plane.dmi.status()["serving"], 10, "the DMI socket bound")
    print(json.dumps({"bound": loaded(), "status": plane.dmi.status()}), flush=True)
    await eventually_async(lambda: plane.dmi.status()["requests"]["MapperRegister"], 30, "a registration")
    print(json.dumps({"registered": loaded(), "status": plane.dmi.status()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    stop.set()
    await task


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
