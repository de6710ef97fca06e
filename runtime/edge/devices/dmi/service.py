"""DMI for one edge: the DeviceManagerService socket, the registered mappers, and the device plane's data.

``Dmi`` is built by the device plane when ``dmi.enabled``. It binds the socket at once (gate.py)
but imports gRPC — grpclib, protobuf, the stubs, ``server`` and ``mappers`` — only when the first
mapper connects or the cache names a registered mapper: an edge with DMI on and no mapper stays as
light as one with DMI off (docs/benchmarks.md). It reads the node's Devices and DeviceModels from
the edge's cache (the same lister the plane uses), stores reports through the plane's bridge (the
MQTT path's checks, twin store and uplink), and is told by the plane whenever a Device,
DeviceModel or membership message arrived (``changed``), which wakes every mapper link to
reconcile. Mappers, with what each was last given, are kept in the cache file (table
``dmi_mappers``), so a restarted edge keeps serving its mappers without waiting for them to
register again, and `kedge status devices` can name a device's mapper offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path
from socket import socket
from typing import TYPE_CHECKING, Any

import orjson

from runtime.config import DmiSection
from runtime.edge.devices import twins as tw
from runtime.edge.devices.dmi.gate import RateLimit, group_id, knock, listen
from runtime.edge.devices.trouble import Trouble

if TYPE_CHECKING:  # gRPC: imported when a mapper connects (``_grpc``), not with this module
    from grpclib.server import Server

    from runtime.edge.devices.dmi import api_pb2 as pb
    from runtime.edge.devices.dmi.mappers import MapperLink, Wanted
    from runtime.edge.devices.dmi.server import ManagerService
    from runtime.edge.devices.plane import DevicePlane

log = logging.getLogger("kedge.edge.dmi")
REQUESTS = ("MapperRegister", "ReportDeviceStatus", "ReportDeviceStates", "twins")
TABLE = """CREATE TABLE IF NOT EXISTS dmi_mappers (protocol TEXT PRIMARY KEY, data BLOB NOT NULL,
    updated REAL NOT NULL)"""


class Dmi:
    def __init__(self, cfg: DmiSection, plane: DevicePlane) -> None:
        self.cfg, self.plane, self.node = cfg, plane, plane.node
        if cfg.group:
            group_id(cfg.group)  # a group that does not exist is a ConfigError before anything starts
        self.trouble = Trouble(log)
        self.limit = RateLimit(cfg.rate, cfg.burst)
        self.service: ManagerService | None = None  # with gRPC, once a mapper connects
        self.links: dict[str, MapperLink] = {}  # protocol -> the mapper serving it
        self.listener: socket | None = None  # the bound socket, before and while gRPC serves it
        self.server: Server | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()

    def _grpc(self) -> ManagerService:
        """Import gRPC and build the service (once): a mapper connected, or the cache names one."""
        if self.service is None:
            from runtime.edge.devices.dmi.server import ManagerService

            self.service = ManagerService(self, self.limit)
        return self.service

    # ------------------------------------------------------------ data the service and links need

    def spec(self, device: str) -> tw.Spec | None:
        return self.plane.bridge.specs.get(device) if self.plane.bridge else None

    def twins(self, device: str) -> dict[str, Any]:
        return (self.plane.store.twins.get(device) or {}) if self.plane.store else {}

    async def store_twins(
        self, device: str, spec: tw.Spec, twin: dict[str, Any], event_id: str, ts: int
    ) -> None:
        assert self.plane.bridge is not None
        await self.plane.bridge.apply(device, spec, {"event_id": event_id, "twin": twin}, event_id, ts)

    async def store_state(self, device: str, spec: tw.Spec, state: str) -> None:
        assert self.plane.bridge is not None
        await self.plane.bridge.set_state(device, spec, state)

    async def wanted(self, protocol: str) -> Wanted:
        """The node's Devices of ``protocol`` (as DMI messages) and the DeviceModels they use or name it."""
        from runtime.edge.devices.dmi import convert

        on_node = self.plane.bridge.specs if self.plane.bridge else {}
        models = {convert.key(m): m for m in await self.plane.cached("devicemodel") if isinstance(m, dict)}
        devices: dict[str, pb.Device] = {}
        used: dict[str, pb.DeviceModel] = {}
        for obj in await self.plane.cached("device"):
            if not isinstance(obj, dict) or convert.protocol_of(obj) != protocol:
                continue
            k = convert.key(obj)
            if k not in on_node:
                continue
            model = models.get(convert.model_ref(obj))
            devices[k] = convert.device(obj, model, self.twins(k))
            if model is not None:
                used[convert.model_ref(obj)] = convert.model(model)
        for k, m in models.items():
            if k not in used and convert.model_protocol(m) == protocol:
                used[k] = convert.model(m)
        return devices, used

    # ------------------------------------------------------------ registration

    async def register(self, info: pb.MapperInfo, with_data: bool) -> pb.MapperRegisterResponse:
        """Record the mapper (replacing an older one of its protocol); with data: its devices at once."""
        from runtime.edge.devices.dmi import api_pb2 as pb
        from runtime.edge.devices.dmi import convert
        from runtime.edge.devices.dmi.mappers import MapperLink

        out = pb.MapperRegisterResponse()
        given: dict[str, bytes] = {}
        given_models: dict[str, bytes] = {}
        if with_data:
            devices, models = await self.wanted(info.protocol)
            by_name = {(m.namespace, m.name): m for m in models.values()}
            for k, d in devices.items():
                model = by_name.get((d.namespace, d.spec.deviceModelReference))
                if model is None:
                    continue  # edgecore leaves out a device whose model it does not have
                out.deviceList.append(d)
                out.modelList.append(model)  # parallel lists: model i belongs to device i
                given[k] = convert.fingerprint(d)
                given_models[f"{model.namespace}/{model.name}"] = convert.fingerprint(model)
        old = self.links.get(info.protocol)
        link = MapperLink(
            info, self.wanted, self.trouble, devices=given, models=given_models, on_sent=self._save
        )
        self.links[info.protocol] = link
        log.info(
            "mapper %s %s registered for protocol %s at %s%s",
            info.name, info.version, info.protocol, link.address,
            f" (replaces {old.info.name})" if old is not None else "",
        )  # fmt: skip
        self._start(link, replacing=old)
        self._save(link)
        return out

    def _start(self, link: MapperLink, replacing: MapperLink | None = None) -> None:
        task = self._tasks.pop(link.protocol, None)
        if task is not None:
            task.cancel()
        if replacing is not None:
            close = asyncio.ensure_future(replacing.close())
            close.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
        self._tasks[link.protocol] = asyncio.get_running_loop().create_task(
            link.run(self._stop), name=f"dmi-mapper-{link.protocol}"
        )

    def changed(self) -> None:
        """A Device, DeviceModel or membership changed: every mapper reconciles."""
        for link in self.links.values():
            link.wake.set()

    # ------------------------------------------------------------ persistence (the cache file)

    def _save(self, link: MapperLink) -> None:
        store = self.plane.store
        if store is None or self.links.get(link.protocol) is not link:
            return
        i = link.info
        row = orjson.dumps({
            "info": {"name": i.name, "version": i.version, "apiVersion": i.api_version,
                     "protocol": link.protocol, "address": link.address, "state": i.state},
            "devices": {k: v.hex() for k, v in link.devices.items()},
            "models": {k: v.hex() for k, v in link.models.items()},
            "health": link.health, "error": link.error, "registered": link.registered,
        })  # fmt: skip

        def op(db: sqlite3.Connection) -> None:
            db.execute(TABLE)
            db.execute("INSERT OR REPLACE INTO dmi_mappers VALUES (?,?,?)", (link.protocol, row, time.time()))

        task = asyncio.ensure_future(store.write(op))
        task.add_done_callback(self._saved)

    def _saved(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.trouble.note("dmi-save", f"mapper record not saved in the cache: {task.exception()!r}")

    async def _load(self) -> None:
        store = self.plane.store
        assert store is not None
        rows: list[tuple[str, bytes]] = []

        def op(db: sqlite3.Connection) -> None:
            db.execute(TABLE)
            rows.extend(db.execute("SELECT protocol, data FROM dmi_mappers").fetchall())

        await store.write(op)
        if not rows:
            return
        self._grpc()  # a mapper registered before: its link calls it, so gRPC is needed now
        from runtime.edge.devices.dmi import api_pb2 as pb
        from runtime.edge.devices.dmi.mappers import MapperLink

        for protocol, data in rows:
            saved = orjson.loads(data)
            i = saved.get("info") or {}
            info = pb.MapperInfo(
                name=i.get("name", ""), version=i.get("version", ""), api_version=i.get("apiVersion", ""),
                protocol=protocol, address=str(i.get("address", "")).encode(), state=i.get("state", ""),
            )  # fmt: skip
            link = MapperLink(
                info, self.wanted, self.trouble, on_sent=self._save,
                devices={k: bytes.fromhex(v) for k, v in (saved.get("devices") or {}).items()},
                models={k: bytes.fromhex(v) for k, v in (saved.get("models") or {}).items()},
            )  # fmt: skip
            link.registered = float(saved.get("registered") or time.time())
            self.links[protocol] = link

    # ------------------------------------------------------------ lifecycle

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the socket until ``stop``; a socket that cannot be bound is said once and retried.

        The socket is bound at once; gRPC is imported and started on it when the first mapper knocks."""
        await self._load()
        for link in self.links.values():
            self._start(link)
        path = Path(self.cfg.socket)
        try:
            while not stop.is_set() and self.listener is None:
                try:
                    self.listener = listen(path, self.cfg.group)
                except OSError as exc:
                    self.trouble.note("listen", f"DMI socket {path} cannot be served: {exc}", logging.ERROR)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 5.0)
                    continue
                self.trouble.clear("listen", f"DMI socket {path} served")
                log.info("DMI (KubeEdge dmi/v1beta1) serving on %s", path)
            if self.listener is not None and await knock(self.listener, stop):
                from runtime.edge.devices.dmi.server import serve

                self.server = await serve(self.listener, self._grpc())
            await stop.wait()
        finally:
            self._stop.set()
            if self.server is not None:
                self.server.close()  # no new calls, running ones cancelled
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.server.wait_closed(), 1.0)
            elif self.listener is not None:
                self.listener.close()
            if self.listener is not None:
                with contextlib.suppress(OSError):
                    os.unlink(path)  # a few µs: a local unlink
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            for link in self.links.values():
                await link.close()

    # ------------------------------------------------------------ status

    def mapper_of(self, protocol: str) -> dict[str, Any] | None:
        link = self.links.get(protocol)
        return None if link is None else {"name": link.info.name, "health": link.health}

    def status(self) -> dict[str, Any]:
        return {
            "socket": self.cfg.socket,
            "serving": self.listener is not None,
            "grpcLoaded": self.service is not None,
            "mappers": [link.status() for _, link in sorted(self.links.items())],
            "requests": dict(self.service.counts) if self.service else dict.fromkeys(REQUESTS, 0),
            "rejected": self.service.rejected if self.service else 0,
            "rateLimited": self.limit.refused,
            "rateLimit": {"rate": self.limit.rate, "burst": self.limit.burst},
            "trouble": self.trouble.snapshot(),
        }
