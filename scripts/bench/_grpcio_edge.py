"""`kedge edge run` with DMI served by grpcio instead of grpclib — a comparison for scripts/bench/dmi.py only.

The product edge serves DMI with grpclib (runtime/edge/devices/dmi/server.py); grpcio is a test
dependency (the test mapper and the bench load use it). To compare the two servers on the same edge,
this runs the edge's own launcher with two swaps: gRPC is started at once (no waiting for the first
mapper, since grpcio binds the socket itself), and ``server.serve`` is replaced by a grpc.aio server on
the same socket path whose methods hand each request to the edge's own ``ManagerService`` handlers
(rate limit, checks, twin store) — only the gRPC library differs. Never imported by product code.

    python scripts/bench/_grpcio_edge.py edge run --root ROOT ...   (as `kedge edge run`)
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import grpc
from grpclib.exceptions import GRPCError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runtime.edge import launcher
from runtime.edge.devices.dmi import server, service
from tests.dmi import api_pb2_grpc as rpc


class GrpcioServer:
    """grpc.aio's server behind what Dmi uses of grpclib's (close, wait_closed)."""

    def __init__(self, aio: Any) -> None:
        self.aio = aio
        self.stopping: asyncio.Task[None] | None = None

    def close(self) -> None:
        self.stopping = asyncio.ensure_future(self.aio.stop(0.5))

    async def wait_closed(self) -> None:
        if self.stopping is not None:
            await self.stopping


async def serve(sock: socket.socket, manager: server.ManagerService) -> Any:
    path = sock.getsockname()
    sock.close()
    os.unlink(path)

    async def call(handle: Any, request: Any, context: Any) -> Any:
        try:
            return await handle(request)
        except GRPCError as exc:
            await context.abort(grpc.StatusCode[exc.status.name], exc.message or "")

    class Servicer(rpc.DeviceManagerServiceServicer):
        async def MapperRegister(self, request: Any, context: Any) -> Any:
            return await call(manager.mapper_register, request, context)

        async def ReportDeviceStatus(self, request: Any, context: Any) -> Any:
            return await call(manager.report_device_status, request, context)

        async def ReportDeviceStates(self, request: Any, context: Any) -> Any:
            return await call(manager.report_device_states, request, context)

    aio = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    rpc.add_DeviceManagerServiceServicer_to_server(Servicer(), aio)  # type: ignore[no-untyped-call]
    old = os.umask(0o177)
    try:
        aio.add_insecure_port(f"unix:{path}")
        await aio.start()
    finally:
        os.umask(old)
    return GrpcioServer(aio)


async def at_once(_sock: socket.socket, stop: asyncio.Event) -> bool:
    return not stop.is_set()


if __name__ == "__main__":
    server.serve = serve  # type: ignore[assignment]
    service.knock = at_once  # type: ignore[assignment]
    sys.exit(launcher.main(sys.argv[1:]))
