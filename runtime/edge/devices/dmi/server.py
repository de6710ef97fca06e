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
  property). The good twins of a batch are stored together; if any was bad the call then fails with
  INVALID_ARGUMENT naming device, property and reason of each bad one and how many others were
  stored — the response message has no error field. An unknown device is NOT_FOUND.
- ``ReportDeviceStates`` stores the device's state (online, offline, ok, unknown, unhealthy).
Every call passes the rate limit first (RESOURCE_EXHAUSTED beyond it); see ``RateLimit``.
"""

from __future__ import annotations

import logging
import os
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from runtime.edge.devices import twins as tw
from runtime.edge.devices.bridge import now_ms
from runtime.edge.devices.dmi import api_grpc as rpc
from runtime.edge.devices.dmi import api_pb2 as pb

if TYPE_CHECKING:
    from runtime.edge.devices.dmi.service import Dmi

log = logging.getLogger("kedge.edge.dmi")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class RateLimit:
    """A token bucket: ``rate`` requests per second on average, ``burst`` at once.

    KubeEdge allows 1 request/s with a burst of 100 over all mappers, which one mapper with a few
    devices reporting every second already exceeds; kedge's default (2000/s, burst 2000) is twice
    what 100 devices at 10 Hz need (scripts/bench/dmi.py) and still bounds a runaway mapper."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.at = float(burst), clock()
        self.refused = 0

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False


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
        good: dict[str, Any] = {}
        bad: list[str] = []
        current = self.dmi.twins(device)
        ts = now_ms()
        for t in request.reportedDevice.twins:
            name, body = t.propertyName, twin_body(t)
            if not name:
                bad.append(f"device {device}: a twin without propertyName")
                continue
            if "actual" not in body and "expected" not in body:
                bad.append(f"device {device} property {name}: neither reported nor observedDesired given")
                continue
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


def prepare_socket(path: Path) -> None:
    """Make room for the socket: its folder (0755 if new) and no stale socket file at ``path``.

    Anything else at ``path`` (a regular file, a folder) is left alone and the bind fails, naming it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(st.st_mode):
        path.unlink()


def group_id(group: str) -> int:
    """A group name or number → gid (ConfigError naming ``dmi.group`` when there is no such group)."""
    import grp

    from runtime.errors import ConfigError

    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"dmi.group = {group!r}: no such group", hint="a group name or gid") from None


async def serve(path: Path, service: ManagerService, group: str = "") -> Server:
    """Start the gRPC server on the unix socket ``path``: mode 0600 (only the edge's user connects),
    or 0660 owned by ``group`` when one is given (mappers running as another user of that group)."""
    gid = group_id(group) if group else None
    prepare_socket(path)
    server = Server([service])
    old = os.umask(0o177)  # bound here, created 0600: never briefly open to others
    try:
        await server.start(path=str(path))
    finally:
        os.umask(old)
    if gid is not None:
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
    else:
        os.chmod(path, 0o600)
    return server
