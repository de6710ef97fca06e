"""One registered mapper and the edge's calls to its DeviceMapperService, kept in step with the node.

A ``MapperLink`` owns a gRPC channel to the mapper's socket (``MapperInfo.address``) and what the
mapper was last given: a fingerprint per device and per model (``convert.fingerprint``). Each pass
(``reconcile``) compares that with what the node has now — ``CreateDeviceModel`` before
``RegisterDevice``, ``UpdateDevice``/``UpdateDeviceModel`` for a changed spec (desired values
included), ``RemoveDevice`` for a Device that left the node or was deleted, then
``RemoveDeviceModel`` — and records each call that succeeded, so a pass resumes where a failed one
stopped. A mapper that is down (its socket refuses or is gone, the connection breaks, UNAVAILABLE,
DEADLINE_EXCEEDED or no answer within the call's deadline) is retried with exponential back-off
(0.5 s … 30 s, jitter), said once and counted; a call the mapper answered with another error counts
as delivered (retrying cannot change its answer) and is recorded in ``refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from runtime.backoff import backoff
from runtime.edge.devices.dmi import api_grpc as rpc
from runtime.edge.devices.dmi import api_pb2 as pb
from runtime.edge.devices.dmi import convert
from runtime.edge.devices.trouble import Trouble

log = logging.getLogger("kedge.edge.dmi")
CALL_TIMEOUT = 10.0  # edgecore's per-call deadline
PROBE_EVERY = 5.0  # an idle link checks that the mapper's socket still answers (health in status)
DOWN = frozenset({Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED})
# what grpclib raises when the mapper's socket cannot be reached or the connection breaks
UNREACHABLE = (OSError, TimeoutError, ProtocolError, StreamTerminatedError)
# what the node has for one protocol: device id -> Device message, model key -> DeviceModel message
Wanted = tuple[dict[str, pb.Device], dict[str, pb.DeviceModel]]


class MapperDown(Exception):
    pass


class MapperLink:
    def __init__(
        self,
        info: pb.MapperInfo,
        wanted: Callable[[str], Awaitable[Wanted]],
        trouble: Trouble,
        *,
        devices: dict[str, bytes] | None = None,
        models: dict[str, bytes] | None = None,
        on_sent: Callable[[MapperLink], None] | None = None,
    ) -> None:
        self.info, self.wanted, self.trouble, self.on_sent = info, wanted, trouble, on_sent
        self.protocol = info.protocol
        self.address = info.address.decode("utf-8", "replace")
        self.devices: dict[str, bytes] = dict(devices or {})  # what the mapper was given
        self.models: dict[str, bytes] = dict(models or {})
        self.registered = time.time()
        self.health = "registered"
        self.error = ""
        self.failures = 0
        self.retry_at: float | None = None
        self.contact = 0.0  # monotonic time the mapper last answered (a call or a probe)
        self.calls: dict[str, int] = {}
        self.refused: dict[str, str] = {}
        self.wake = asyncio.Event()
        self.wake.set()
        self._channel: Channel | None = None
        self._stub: Any = None

    # ------------------------------------------------------------ calls

    def _stub_(self) -> Any:
        if self._stub is None:
            self._channel = Channel(path=self.address)
            self._stub = rpc.DeviceMapperServiceStub(self._channel)
        return self._stub

    def close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel, self._stub = None, None

    async def close(self) -> None:
        self.close_channel()

    async def _call(self, method: str, request: Any, what: str) -> bool:
        """One call; False if the mapper refused it (recorded), MapperDown if it cannot be reached."""
        try:
            await getattr(self._stub_(), method)(request, timeout=CALL_TIMEOUT)
        except UNREACHABLE as exc:
            self.close_channel()  # a fresh connection next time
            raise MapperDown(f"{method} {what}: UNAVAILABLE: {exc or type(exc).__name__}") from exc
        except GRPCError as exc:
            if exc.status in DOWN or not self.address:
                raise MapperDown(f"{method} {what}: {exc.status.name}: {exc.message}") from exc
            self.refused[what] = f"{method}: {exc.status.name}: {exc.message}"
            self.trouble.note(f"dmi-refused:{self.protocol}:{what}", f"mapper {self.info.name} refused "
                              f"{method} of {what}: {exc.status.name}: {exc.message}")  # fmt: skip
            return False
        self.calls[method] = self.calls.get(method, 0) + 1
        self.contact = time.monotonic()
        self.refused.pop(what, None)
        return True

    async def reconcile(self) -> bool:
        """Bring the mapper in step with the node; True if any call was made."""
        devices, models = await self.wanted(self.protocol)
        made = False
        for k, m in models.items():
            fp = convert.fingerprint(m)
            if self.models.get(k) != fp:
                method = "UpdateDeviceModel" if k in self.models else "CreateDeviceModel"
                req = (pb.UpdateDeviceModelRequest if k in self.models else pb.CreateDeviceModelRequest)(
                    model=m
                )
                await self._call(method, req, f"model {k}")
                self.models[k] = fp
                made = True
        for k, d in devices.items():
            fp = convert.fingerprint(d)
            if self.devices.get(k) != fp:
                method = "UpdateDevice" if k in self.devices else "RegisterDevice"
                req = (pb.UpdateDeviceRequest if k in self.devices else pb.RegisterDeviceRequest)(device=d)
                await self._call(method, req, f"device {k}")
                self.devices[k] = fp
                made = True
        for k in [k for k in self.devices if k not in devices]:
            ns, _, name = k.partition("/")
            await self._call(
                "RemoveDevice", pb.RemoveDeviceRequest(deviceName=name, deviceNamespace=ns), f"device {k}"
            )
            del self.devices[k]
            made = True
        for k in [k for k in self.models if k not in models]:
            ns, _, name = k.partition("/")
            req = pb.RemoveDeviceModelRequest(modelName=name, modelNamespace=ns)
            await self._call("RemoveDeviceModel", req, f"model {k}")
            del self.models[k]
            made = True
        return made

    async def _probe(self) -> bool:
        """Connect to the mapper's socket (no call: DMI has no ping); MapperDown if it does not answer."""
        try:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.address), 2.0)
        except (OSError, TimeoutError) as exc:
            raise MapperDown(f"cannot connect to {self.address}: {exc or 'no answer in 2 s'}") from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        self.contact = time.monotonic()
        return False

    # ------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile whenever woken; back off while the mapper is down. Ends on ``stop`` or cancel."""
        delays = None
        key = f"dmi-down:{self.protocol}"
        while not stop.is_set():
            waiter = asyncio.ensure_future(self.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=PROBE_EVERY, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if stop.is_set():
                return
            woken = self.wake.is_set()
            self.wake.clear()
            try:
                made = await self.reconcile() if woken else False
                # woken often with nothing to send (the cloud's device messages), it still checks
                # the mapper every PROBE_EVERY: a killed mapper is shown down all the same
                if not made and time.monotonic() - self.contact >= PROBE_EVERY:
                    await self._probe()
            except MapperDown as exc:
                self.health, self.error = "down", str(exc)
                self.failures += 1
                delays = delays or backoff(0.5, cap=30.0)
                pause = next(delays)
                self.retry_at = time.time() + pause
                self.trouble.note(key, f"mapper {self.info.name} ({self.protocol}) at {self.address} is "
                                  f"down: {exc}; retrying with back-off")  # fmt: skip
                if self.on_sent is not None:
                    self.on_sent(self)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                self.wake.set()
                continue
            delays, self.retry_at = None, None
            was = self.health
            self.health, self.error = "ok", ""
            self.trouble.clear(key, f"mapper {self.info.name} ({self.protocol}) reachable again")
            if (made or was != "ok") and self.on_sent is not None:
                self.on_sent(self)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.info.name,
            "protocol": self.protocol,
            "version": self.info.version,
            "apiVersion": self.info.api_version,
            "address": self.address,
            "registered": self.registered,
            "health": self.health,
            "error": self.error,
            "failures": self.failures,
            "retryAt": self.retry_at,
            "devices": sorted(self.devices),
            "models": sorted(self.models),
            "calls": dict(self.calls),
            "refused": dict(self.refused),
        }
