"""The device plane of one edge: broker (embedded or external), bridge, twin store, uplink — wired.

Flow: device PUBLISH → broker (``Broker.on_publish`` in-process, or paho's thread for an external
broker) → ``Bridge.handle`` → twin store commit → answers published + report row → ``Uplink`` → hub.
The cloud's Device/DeviceModel objects (cached and acked by the Agent) come in through ``on_cloud``:
they define the node's devices, property types and desired values; a changed desired value is
published as a delta. At start, specs come from the edge's cache and twins from the twin store, so
devices are served before the cloud is back. Broker trouble (a port in use, an external broker away)
is said once, counted, retried — the plane never stops the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.backoff import backoff
from runtime.config import DmiSection, MqttSection
from runtime.edge.devices import twins as tw
from runtime.edge.devices.bridge import Bridge, now_ms, subscriptions
from runtime.edge.devices.broker import Broker
from runtime.edge.devices.external import ExternalBroker, parse_url
from runtime.edge.devices.mqttcodec import Publish
from runtime.edge.devices.store import TwinStore
from runtime.edge.devices.trouble import Trouble
from runtime.edge.devices.uplink import Uplink
from runtime.edge.link import Hub
from runtime.errors import ConfigError
from runtime.protocol import Message, parse_resource

log = logging.getLogger("kedge.edge.devices")
Lister = Callable[[str], Awaitable[list[Any]]]  # cached objects of one type ("device", "devicemodel")


def listeners(cfg: MqttSection) -> list[tuple[str, int]]:
    out = [(cfg.bind, cfg.port)]
    for item in cfg.listen:
        host, _, port = item.rpartition(":")
        if not port.isdigit() or int(port) > 65535:
            raise ConfigError(f"mqtt.listen {item!r}: expected host:port", hint="e.g. 172.17.0.1:1883")
        out.append((host.strip("[]") or "0.0.0.0", int(port)))
    return out


class DevicePlane:
    def __init__(
        self,
        cfg: MqttSection,
        node: str,
        db: Path,
        *,
        cached: Lister,
        hub: Hub | None = None,
        dmi: DmiSection | None = None,
    ) -> None:
        self.cfg, self.node, self.db, self.cached = cfg, node, db, cached
        self.dmi_cfg = dmi if dmi is not None and dmi.enabled else None
        self.dmi: Any = None  # dmi.service.Dmi when dmi.enabled (gRPC loads once a mapper connects)
        self.protocols: dict[str, str] = {}  # device id -> spec.protocol.protocolName
        self.hub = hub
        self.trouble = Trouble(log)
        self.store: TwinStore | None = None
        self.bridge: Bridge | None = None
        self.uplink: Uplink | None = None
        self.broker: Broker | None = None
        self.crashes = 0  # embedded broker restarts after a failure
        self.external: ExternalBroker | None = None
        self.ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open the twin store and load what the cache knows (before any broker or cloud).

        A bad listen address or broker URL is a ConfigError here, before anything starts."""
        if self.cfg.mode == "external":
            parse_url(self.cfg.url)
        else:
            listeners(self.cfg)
        self.store = store = await TwinStore.open(
            self.db, self.cfg.report_window_seconds, self.cfg.twin_sync_seconds
        )
        self.uplink = Uplink(
            store,
            self.hub,
            self.cfg.report_window_seconds,
            self.cfg.report_ack_timeout_seconds,
            qps=self.cfg.report_qps,
            burst=self.cfg.report_burst,
        )
        store.link_up_since = self.uplink.link_up_since
        self.bridge = Bridge(self.node, store, self._publish, self.uplink.kick)
        self.bridge.upload_to_cloud = self._to_cloud
        if self.dmi_cfg is not None:
            from runtime.edge.devices.dmi.gate import missing
            from runtime.edge.devices.dmi.service import Dmi

            if missing():  # checked now; they are imported only when a mapper connects
                raise ConfigError(
                    f"dmi.enabled needs grpclib and protobuf: {', '.join(missing())} not installed",
                    hint="pip install 'kedge[dmi]'",
                )
            self.dmi = Dmi(self.dmi_cfg, self)
        models = {self._key(m): m for m in await self.cached("devicemodel") if isinstance(m, dict)}
        for dev in await self.cached("device"):
            if isinstance(dev, dict):
                await self._set_device(dev, models, publish=False)

    async def run(self, stop: asyncio.Event) -> None:
        if self.store is None:
            await self.open()
        assert self.uplink is not None
        uplink = asyncio.create_task(self.uplink.run(stop), name="device-uplink")
        dmi = asyncio.create_task(self.dmi.run(stop), name="dmi") if self.dmi is not None else None
        try:
            if self.cfg.mode == "external":
                await self._run_external(stop)
            else:
                await self._run_embedded(stop)
        finally:
            await uplink
            if dmi is not None:
                await dmi
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            assert self.store is not None
            await self.store.close()

    async def _run_embedded(self, stop: asyncio.Event) -> None:
        delays = backoff(1.0, cap=30.0)
        while not stop.is_set():
            broker = Broker(listeners(self.cfg), on_publish=self._on_publish, trouble=self.trouble)
            try:
                await broker.start()
            except OSError as exc:
                await broker.stop()
                self.trouble.note("listen", f"MQTT broker cannot listen on {listeners(self.cfg)}: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), next(delays))
                continue
            self.trouble.clear("listen", "MQTT broker listening")
            self.broker = broker
            log.info("MQTT broker listening on %s", ", ".join(f"{h}:{p}" for h, p in broker.addresses))
            self._republish_deltas()
            self.ready.set()
            stopped = asyncio.ensure_future(stop.wait())
            crashed = asyncio.ensure_future(broker.failed())
            try:
                await asyncio.wait({stopped, crashed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                crashed.cancel()
                await broker.stop()
                self.broker = None
            if stop.is_set():
                return
            # its sessions are gone with it; devices reconnect, what they were answered is in the store
            self.crashes += 1
            self.trouble.note("crashed", f"MQTT broker failed ({crashed.result()!r}); restarting it")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next(delays))

    async def _run_external(self, stop: asyncio.Event) -> None:
        c = self.cfg
        ext = ExternalBroker(
            c.url, f"kedge-{self.node}", subscriptions(self.node), self._on_external,
            username=c.username, password=c.password, ca=c.ca, cert=c.cert, key=c.key,
            on_connected=self._republish_deltas, trouble=self.trouble,
        )  # fmt: skip
        self.external = ext
        await ext.start()
        self.ready.set()
        try:
            await stop.wait()
        finally:
            await ext.stop()

    # ------------------------------------------------------------ MQTT side

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.broker is not None:
            self.broker.publish(topic, payload, qos=1)
        elif self.external is not None:
            self.external.publish(topic, payload)

    async def _on_publish(self, _client_id: str, p: Publish) -> None:
        if p.topic.startswith("$hw/"):
            await self._handle(p.topic, p.payload)

    async def _handle(self, topic: str, payload: bytes) -> None:
        """The bridge; a failure of the edge itself (the cache's disk full, …) is said once and counted."""
        if self.bridge is None:
            return
        try:
            await self.bridge.handle(topic, payload)
        except Exception as exc:
            self.trouble.note(
                "bridge", f"device message on {topic} not handled: {exc!r}", level=logging.ERROR
            )

    def _on_external(self, topic: str, payload: bytes) -> None:
        if self.bridge is None:
            return
        task = asyncio.get_running_loop().create_task(self._handle(topic, payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _republish_deltas(self) -> None:
        if self.bridge is not None:
            for device in list(self.bridge.specs):
                self.bridge.publish_delta(device)

    def _to_cloud(self, msg: Message) -> None:
        if self.hub is None:
            return
        task = asyncio.get_running_loop().create_task(self.hub.send(msg))  # durable while offline
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ cloud side

    @staticmethod
    def _key(obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"

    async def on_cloud(self, msg: Message) -> None:
        """A device, devicemodel or membership message from the cloud (the Agent cached and acked it)."""
        if self.bridge is None or msg.operation == "response":
            return  # the cloud's "OK" to our reports
        try:
            await self._on_cloud(msg)
        finally:
            if self.dmi is not None:
                self.dmi.changed()  # mappers reconcile with the node's devices

    async def _on_cloud(self, msg: Message) -> None:
        assert self.bridge is not None
        if msg.resource == "membership" or msg.resource.endswith("/membership"):
            body = msg.content if isinstance(msg.content, dict) else {}
            self.bridge.membership_updated(body.get("added_devices"), body.get("removed_devices"))
            for d in body.get("removed_devices") or []:
                if isinstance(d, dict) and d.get("id"):
                    await self._drop(str(d["id"]))
            return
        res = parse_resource(msg.resource)
        if res is None or res.type not in ("device", "devicemodel"):
            return
        models = {self._key(m): m for m in await self.cached("devicemodel") if isinstance(m, dict)}
        if res.type == "devicemodel":
            for dev in await self.cached("device"):
                ref = ((dev.get("spec") or {}).get("deviceModelRef") or {}).get("name")
                if (
                    isinstance(dev, dict)
                    and ref == res.name
                    and self._key(dev).startswith(f"{res.namespace}/")
                ):
                    await self._set_device(dev, models)
            return
        device_id = f"{res.namespace}/{res.name}"
        if msg.operation == "delete" or not isinstance(msg.content, dict):
            await self._drop(device_id)
        else:
            await self._set_device(msg.content, models)

    async def _set_device(self, dev: dict[str, Any], models: dict[str, Any], publish: bool = True) -> None:
        assert self.bridge is not None and self.store is not None
        spec_ = dev.get("spec") or {}
        device_id = self._key(dev)
        if spec_.get("nodeName") and spec_.get("nodeName") != self.node:
            await self._drop(device_id)  # moved to another node
            return
        ns = device_id.split("/", 1)[0]
        model = models.get(f"{ns}/{(spec_.get('deviceModelRef') or {}).get('name', '')}")
        spec = tw.spec_of(dev, model)
        proto = spec_.get("protocol")
        self.protocols[device_id] = str(proto.get("protocolName") or "") if isinstance(proto, dict) else ""
        self.bridge.specs[device_id] = spec
        twin = self.store.twins.setdefault(device_id, {})
        before = {n: dict(s) for n, s in twin.items()}
        tw.apply_desired(twin, spec, now_ms())
        changed = {n: s for n, s in twin.items() if before.get(n) != s}
        if changed:
            await self.store.write(self.store.op_put_twin(device_id, changed))
        if publish and changed:
            self.bridge.publish_delta(device_id)

    async def _drop(self, device_id: str) -> None:
        assert self.bridge is not None and self.store is not None
        if self.bridge.specs.pop(device_id, None) is None and device_id not in self.store.twins:
            return
        self.store.twins.pop(device_id, None)
        self.store.states.pop(device_id, None)
        self.protocols.pop(device_id, None)
        await self.store.write(self.store.op_drop_device(device_id))

    # ------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.cfg.mode, "ready": self.ready.is_set()}
        if self.broker is not None:
            out["broker"] = {**self.broker.status(), "restarts": self.crashes}
        if self.external is not None:
            out["external"] = self.external.status()
        if self.bridge is not None and self.store is not None:
            b = self.bridge
            out["devices"] = [
                {"id": d, "properties": len(self.store.twins.get(d) or {}),
                 "state": (self.store.states.get(d) or {}).get("state", ""),
                 "lastReport": b.last_report.get(d), **self._mapper(d)}
                for d in sorted(b.specs)
            ]  # fmt: skip
            out["messages"] = dict(b.counts)
            out["rejected"] = {str(k): v for k, v in sorted(b.rejected.items())}
            up = self.uplink
            out["reports"] = {
                **self.store.read_stats(),
                "sent": up.sent if up else 0,
                "resent": up.resent if up else 0,
                "paced": up.paced if up else 0,
                "qps": up.pace.rate if up else 0,
            }
        out["trouble"] = self.trouble.snapshot()
        if self.dmi is not None:
            out["dmi"] = self.dmi.status()
        return out

    def _mapper(self, device: str) -> dict[str, Any]:
        """A device's protocol and, with DMI, the mapper serving it and its health."""
        proto = self.protocols.get(device, "")
        if not proto:
            return {}
        mapper = self.dmi.mapper_of(proto) if self.dmi is not None else None
        return {"protocol": proto, **({"mapper": mapper} if mapper else {})}

    def twins(self) -> dict[str, Any]:
        """Every twin with expected/actual/versions, for `kedge status devices`."""
        assert self.store is not None
        devices = sorted(self.bridge.specs) if self.bridge else []
        return {"twins": self.store.twins, "states": self.store.states, "devices": devices}
