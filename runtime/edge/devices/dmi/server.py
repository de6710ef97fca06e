"""DeviceManagerService: what mappers call on the edge's DMI socket (gRPC over a unix socket).

- ``MapperRegister`` records the mapper (one per protocol: a newer registration replaces the older,
  as edgecore's client map does) and, with ``withData``, answers at once from the edge's cache with
  the node's Devices of that protocol and their DeviceModels as two parallel lists (device i with
  model i; a model repeats). mapper-framework gives this call a 1 s deadline: nothing here waits
  for the cloud.
- ``ReportDeviceStatus``: each twin's ``reported`` becomes the twin's actual value and
  ``observedDesired`` its expected value (an empty observedDesired — mapper-framework sends one for
  a property without desired value — counts as missing); either may be missing (edgecore crashes on
  a missing one). Each twin is checked as the MQTT path checks it (model type and range, known
  property; a report whose twins are all good — the usual one — is checked once, as it is stored,
  and only a report with a bad twin has each twin checked alone). The good twins of a batch are
  stored together; if any was bad the call then fails with
  INVALID_ARGUMENT naming device, property and reason of each bad one and how many others were
  stored — the response message has no error field. An unknown device is NOT_FOUND.
- ``ReportDeviceStates`` stores the device's state (online, offline, ok, unknown, unhealthy).
Every call passes the rate limit first (RESOURCE_EXHAUSTED beyond it); see ``gate.RateLimit``.
Imported by ``Dmi`` when the first mapper connects (see gate.py), never by an edge without mappers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from runtime.edge.devices import twins as tw
from runtime.edge.devices.bridge import now_ms
from runtime.edge.devices.dmi import api_grpc as rpc
from runtime.edge.devices.dmi import api_pb2 as pb
from runtime.edge.devices.dmi.gate import RateLimit

if TYPE_CHECKING:
    from runtime.edge.devices.dmi.service import Dmi

log = logging.getLogger("kedge.edge.dmi")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def twin_body(t: pb.Twin) -> dict[str, Any]:
    """A DMI twin as the MQTT path's twin/update entry (``actual``/``expected``, metadata type)."""
    body: dict[str, Any] = {}
    typ = ""
    for part, field in (("actual", "reported"), ("expected", "observedDesired")):
        if not t.HasField(field):
            continue
        prop: pb.TwinProperty = getattr(t, field)
        if part == "expected" and prop.value == "":
            continue
        ts = prop.metadata.get("timestamp", "")
        meta = {"timestamp": int(ts)} if ts.isdigit() else {}
        body[part] = {"value": prop.value, "metadata": meta}
        typ = typ or prop.metadata.get("type", "")
    if typ:
        body["metadata"] = {"type": typ}
    return body


async def unary(stream: Stream[Req, Resp], handle: Callable[[Req], Awaitable[Resp]]) -> None:
    """One unary call on grpclib's stream: the request in, ``handle``'s answer out (a ``GRPCError``
    it raises becomes the call's status and message)."""
    request = await stream.recv_message()
    assert request is not None
    await stream.send_message(await handle(request))


class ManagerService(rpc.DeviceManagerServiceBase):
    def __init__(self, dmi: Dmi, limit: RateLimit) -> None:
        self.dmi, self.limit = dmi, limit
        self.counts = {"MapperRegister": 0, "ReportDeviceStatus": 0, "ReportDeviceStates": 0, "twins": 0}
        self.rejected = 0

    def _allow(self, what: str) -> None:
        if not self.limit.allow():
            raise GRPCError(
                Status.RESOURCE_EXHAUSTED,
                f"{what}: over the DMI rate limit ({self.limit.rate:g} requests/s, burst {self.limit.burst})",
            )

    def _reject(self, code: Status, why: str) -> GRPCError:
        self.rejected += 1
        return GRPCError(code, why)

    async def MapperRegister(
        self, stream: Stream[pb.MapperRegisterRequest, pb.MapperRegisterResponse]
    ) -> None:
        await unary(stream, self.mapper_register)

    async def ReportDeviceStatus(
        self, stream: Stream[pb.ReportDeviceStatusRequest, pb.ReportDeviceStatusResponse]
    ) -> None:
        await unary(stream, self.report_device_status)

    async def ReportDeviceStates(
        self, stream: Stream[pb.ReportDeviceStatesRequest, pb.ReportDeviceStatesResponse]
    ) -> None:
        await unary(stream, self.report_device_states)

    async def mapper_register(self, request: pb.MapperRegisterRequest) -> pb.MapperRegisterResponse:
        info = request.mapper
        self._allow(f"MapperRegister of mapper {info.name!r}")
        if not info.protocol:
            raise self._reject(Status.INVALID_ARGUMENT, f"mapper {info.name!r}: mapper.protocol is empty")
        self.counts["MapperRegister"] += 1
        return await self.dmi.register(info, request.withData)

    def _known(self, method: str, namespace: str, name: str) -> tuple[str, tw.Spec]:
        """Rate limit, count, and the device's spec — NOT_FOUND for a device not on this node."""
        self._allow(f"{method} of device {name!r}")
        self.counts[method] += 1
        device = f"{namespace or 'default'}/{name}"
        spec = self.dmi.spec(device)
        if spec is None:
            raise self._reject(Status.NOT_FOUND, f"device {device} is not a device of node {self.dmi.node}")
        return device, spec

    async def report_device_status(
        self, request: pb.ReportDeviceStatusRequest
    ) -> pb.ReportDeviceStatusResponse:
        device, spec = self._known("ReportDeviceStatus", request.deviceNamespace, request.deviceName)
        ts = now_ms()
        given: dict[str, Any] = {}
        bad: list[str] = []
        for t in request.reportedDevice.twins:
            name, body = t.propertyName, twin_body(t)
            if not name:
                bad.append(f"device {device}: a twin without propertyName")
            elif "actual" not in body and "expected" not in body:
                bad.append(f"device {device} property {name}: neither reported nor observedDesired given")
            else:
                given[name] = body
        if given and not bad:
            try:  # the usual report, all good: checked once, as it is stored
                await self.dmi.store_twins(device, spec, given, str(uuid.uuid4()), ts)
            except tw.Rejected:
                pass  # nothing stored; which twin is bad: each is checked alone below
            else:
                self.counts["twins"] += len(given)
                return pb.ReportDeviceStatusResponse()
        good: dict[str, Any] = {}
        current = self.dmi.twins(device)
        for name, body in given.items():
            try:  # checked alone on a scratch copy: a bad twin never blocks the good ones
                scratch = {name: current[name]} if name in current else {}
                tw.apply_update(scratch, spec, {"twin": {name: body}}, ts)
            except tw.Rejected as exc:
                reason = exc.reason.removeprefix(f"twin {name}: ")
                bad.append(f"device {device} property {name}: {reason}")
                continue
            good[name] = body
        if good:
            await self.dmi.store_twins(device, spec, good, str(uuid.uuid4()), ts)
            self.counts["twins"] += len(good)
        if bad:
            stored = f" ({len(good)} other propert{'y' if len(good) == 1 else 'ies'} stored)" if good else ""
            raise self._reject(Status.INVALID_ARGUMENT, "; ".join(bad) + stored)
        return pb.ReportDeviceStatusResponse()

    async def report_device_states(
        self, request: pb.ReportDeviceStatesRequest
    ) -> pb.ReportDeviceStatesResponse:
        device, spec = self._known("ReportDeviceStates", request.deviceNamespace, request.deviceName)
        if request.state.lower() not in tw.STATES:
            raise self._reject(
                Status.INVALID_ARGUMENT,
                f"device {device}: state {request.state!r} is not one of {', '.join(tw.STATES)}",
            )
        await self.dmi.store_state(device, spec, request.state)
        return pb.ReportDeviceStatesResponse()


class OneWritePerPass:
    """A transport that hands what is written during one pass of the event loop to the real one at once.

    grpclib writes each frame group as it makes it: a unary answer is three writes (headers, message,
    trailers), so three syscalls and three wake-ups of the mapper per report, and at 1000 reports/s
    the edge spent a seventh of its loop in those writes (py-spy, issue 18). Buffered until the
    loop's next pass (``call_soon``), they leave as one; the answers of a burst leave together."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.pending: list[bytes] = []
        self.loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self.pending:
            self.loop.call_soon(self.flush)
        self.pending.append(data)

    def flush(self) -> None:
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, is_closing, abort, pause_reading, …
        return getattr(self.transport, name)


class Coalesced(asyncio.Protocol):
    """grpclib's protocol for one connection, writing through ``OneWritePerPass``."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self.inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.inner.connection_made(OneWritePerPass(cast(asyncio.Transport, transport)))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)


class CoalescingServer(Server):
    """grpclib's Server with each connection's writes coalesced per loop pass (``OneWritePerPass``).

    Overrides grpclib's ``_protocol_factory`` (grpclib is pinned < 0.5 in pyproject.toml; the DMI
    tests run every call through it)."""

    def _protocol_factory(self) -> Any:
        return Coalesced(super()._protocol_factory())


async def serve(sock: socket.socket, service: ManagerService) -> Server:
    """Start the gRPC server on the listening unix socket ``sock`` (bound by ``gate.listen``)."""
    server = CoalescingServer([service])
    await server.start(sock=sock)
    return server
