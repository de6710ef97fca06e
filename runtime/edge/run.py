"""The edge runtime root: ``run(cfg, root, stop)`` starts the named tasks and ends when any one ends.

Tasks (style.md "Root tasks"): edgehub (the cloud link), node (registration, status, lease), pods (the
PodManager when importable and the engine answers; retried, never fatal), devices (the MQTT broker
and twins, runtime/edge/devices; unless mqtt.mode=off), statusd (local health), and stop.
``asyncio.wait(FIRST_COMPLETED)``; the rest are cancelled and awaited, then the finished ones'
``.result()`` surfaces the failure that ended the run. The runtime never sees CLI objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runtime import __version__
from runtime.backoff import backoff
from runtime.config import EdgeConfig
from runtime.edge import identity, nodeinfo
from runtime.edge.agent import Agent
from runtime.edge.cacherefs import CacheRefs
from runtime.edge.devices.plane import DevicePlane
from runtime.edge.dial import ClientTLS
from runtime.edge.edgehub import EdgeHub
from runtime.edge.engine import EngineWatch, engine_get
from runtime.edge.events import Recorder
from runtime.edge.layout import EdgeFiles
from runtime.edge.metastore import MetaStore
from runtime.edge.metrics import EdgeMetrics
from runtime.edge.nodestatus import NodeStatus
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.renew import renew_forever
from runtime.edge.statusd import StatusServer
from runtime.edge.streams.server import EdgeStreams
from runtime.edge.usage import CgroupReader, UsageSampler, usage_message
from runtime.edge.usage.sampler import engine_lister
from runtime.errors import ConfigError, KedgeError
from runtime.protocol import Message
from runtime.protocol.tunnel import is_open

log = logging.getLogger("kedge.edge")


def process_facts() -> dict[str, Any]:
    rss = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    t = os.times()
    return {"pid": os.getpid(), "rssBytes": rss, "cpuSeconds": round(t.user + t.system, 3)}


class EdgeRuntime:
    """Everything `kedge edge run` hosts; build, then ``await run(stop)``."""

    def __init__(self, cfg: EdgeConfig, root: Path, *, pods: bool = True, lease_every: float = 10.0) -> None:
        if not cfg.node.name or not cfg.hub.server:
            where = EdgeFiles.of(root).paths.config_file
            raise ConfigError(
                f"{where}: node.name and hub.server are required", hint="run `kedge join` first"
            )
        self.cfg, self.root, self.files = cfg, root, EdgeFiles.of(root)
        if cfg.node.ip:
            try:
                ipaddress.ip_address(cfg.node.ip)
            except ValueError:
                raise ConfigError(
                    f"{self.files.paths.config_file}: node.ip = {cfg.node.ip!r} is not an IP address",
                    hint="set node.ip to this node's address, or remove it to use the default route's",
                ) from None
        if cfg.dmi.enabled and cfg.mqtt.mode == "off":
            raise ConfigError(
                f"{self.files.paths.config_file}: dmi.enabled needs the device plane (mqtt.mode is off)",
                hint="--mqtt embedded (or external=URL) with --dmi on",
            )
        self.want_pods = pods
        self.lease_every = lease_every
        self.started = time.time()
        self.events = Recorder(cfg.node.name)  # kubelet's events, out through the hub (events.py)
        self.store: MetaStore | None = None
        self.hub: EdgeHub | None = None
        self.node: NodeStatus | None = None
        self.agent: Agent | None = None
        self.pod_manager: Any = None
        self.pods_error = ""
        self.engine = EngineWatch(cfg.runtime.docker_host, lambda: self.node.poke() if self.node else None)
        self.node_ip = nodeinfo.node_ip(cfg.node.ip)  # the Node's InternalIP and every pod's hostIP
        self.devices: DevicePlane | None = None
        self.streams: EdgeStreams | None = None
        self.metrics = EdgeMetrics(self._message_counts)
        self.usage: UsageSampler | None = None

    async def _on_message(self, msg: Message) -> None:
        """A stream session's open goes to EdgeStreams, everything else to the Agent."""
        if is_open(msg):
            if self.streams is not None:
                await self.streams.on_open(msg)
        elif self.agent is not None:
            await self.agent.on_message(msg)

    def _message_counts(self) -> dict[tuple[str, str, str], int]:
        return dict(self.hub.message_counts) if self.hub is not None else {}

    async def status(self) -> dict[str, Any]:
        hub = self.hub.status() if self.hub else {}
        node = self.node.state() if self.node else {}
        cache = await self.store.stats() if self.store else {}
        pods = self.pod_manager.local_status() if self.pod_manager is not None else []
        healthy = bool(
            hub.get("connected") and node.get("registered") and node.get("ready") and not node.get("removed")
        )
        return {
            "role": "edge",
            "version": __version__,
            "running": True,
            "healthy": healthy,
            "since": self.started,
            "cloud": {"server": self.cfg.hub.server, **hub},
            "node": node,
            "certificate": {"path": str(self.files.cert), "notAfter": identity.not_after(self.files)},
            "cache": cache,
            "pods": pods,
            "podsError": self.pods_error,
            "events": self.events.status(),
            "usage": self.usage.status() if self.usage is not None else {},
            "runtimeVersion": self.engine.version,
            "runtimeDown": self.engine.down if self.want_pods else "",
            "devices": self.devices.status() if self.devices is not None else {"mode": "off"},
            "process": process_facts(),
        }

    async def _pods(self, stop: asyncio.Event) -> None:
        """Host the PodManager when it exists; Docker trouble is reported and retried, never fatal."""
        if not self.want_pods:
            await stop.wait()
            return
        assert self.store is not None and self.hub is not None and self.agent is not None
        if not await self._pods_needed():
            self.pods_error = ""
            log.info("pods: none cached and no kedge containers; the pod manager starts with the first pod")
            waiter = asyncio.ensure_future(self.agent.pod_seen.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if stop.is_set():
                return
        try:  # imported with the first pod, not at start: about 1.2 MB of the idle edge (docs/benchmarks.md)
            from runtime.edge.pods.manager import PodManager
            from runtime.edge.pods.slots import default_parallel
            from runtime.edge.pods.translate import log_config
        except ImportError as exc:
            self.pods_error = f"pod manager not available: {exc}"
            await stop.wait()
            return
        parallel = self.cfg.runtime.parallel_pod_starts or default_parallel()
        mgr = PodManager(
            DockerAdapter(self.cfg.runtime.docker_host or None, workers=max(8, 2 * parallel)),
            node_name=self.cfg.node.name,
            state_dir=self.files.paths.state,
            refs=CacheRefs(self.store, self.hub),
            on_status=self.agent.on_pod_status,
            parallel=parallel,
            host_ip=self.node_ip,
            events=self.events,
            logs=log_config(self.cfg.runtime.container_log_max_mib, self.cfg.runtime.container_log_max_files),
        )
        delays = backoff(1.0, cap=30.0)
        while not stop.is_set():
            try:
                await mgr.start()
                break
            except KedgeError as exc:
                if self.pods_error != str(exc):
                    log.warning("pods: %s (retrying)", exc)
                self.pods_error = str(exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), next(delays))
        if stop.is_set():
            return
        self.pods_error = ""
        self.pod_manager = mgr
        self.agent.pods = mgr
        n = await self.agent.restore_pods()
        log.info("pods: %d restored from the cache", n)
        try:
            await mgr.run(stop)
        finally:
            await mgr.stop()

    async def _pods_needed(self) -> bool:
        """True when pods are cached or kedge containers of this node exist (to adopt); Docker trouble
        counts as "needed" so the manager reports it. Idle edges thus never load the docker SDK."""
        assert self.store is not None
        if await self.store.list("pod"):
            return True
        filters = json.dumps({"label": ["io.kedge.managed=true", f"io.kedge.node={self.cfg.node.name}"]})
        try:
            found = await engine_get(
                self.cfg.runtime.docker_host, "/containers/json?all=1&filters=" + quote(filters), timeout=5.0
            )
        except KedgeError:
            return True
        return bool(found)

    async def _usage(self, hub: EdgeHub, stop: asyncio.Event) -> None:
        """Resource usage for `kubectl top`: sampled from cgroup files, sent while a kedge cloud is on
        the link (runtime/edge/usage/). The engine is asked only once the pod manager runs."""
        node, host = self.cfg.node.name, self.cfg.runtime.docker_host
        containers = engine_lister(host, node)

        async def lister() -> list[dict[str, Any]]:
            return await containers() if self.pod_manager is not None else []

        self.usage = sampler = UsageSampler(CgroupReader(self.cfg.usage.cgroup_root), lister, ip=self.node_ip)

        async def send(report: dict[str, Any]) -> bool:
            return await hub.try_send(usage_message(node, report), kedge_only=True)

        await sampler.run(send, stop, self.cfg.usage.interval_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        cfg, files = self.cfg, self.files
        for d in files.make_private():
            log.warning("%s was readable by others: made 0700 (it holds the node key and config)", d)
        self.store = store = await MetaStore.open(Path(cfg.cache.db))
        self.agent = agent = Agent(store, cfg.node.name, observe_sync=self.metrics.observe_pod_sync)
        self.hub = hub = EdgeHub(
            cfg.hub.server,
            cfg.node.name,
            on_message=self._on_message,
            outbox_path=files.outbox,
            cert=str(files.cert),
            key=str(files.key),
            ca=str(files.ca),
            project_id=cfg.hub.project_id,
            epoch=store.epoch,
            heartbeat=cfg.hub.heartbeat_seconds,
            reconnect_cap=cfg.hub.reconnect_cap_seconds,
            connect_timeout=cfg.hub.connect_timeout_seconds,
            max_frame_bytes=cfg.hub.max_frame_bytes,
        )
        agent.hub = hub
        assert isinstance(hub.ssl_context, ClientTLS)
        self.streams = EdgeStreams(
            cfg.hub.server,
            cfg.node.name,
            cfg.hub.project_id,
            hub.ssl_context,
            DockerAdapter(cfg.runtime.docker_host or None, workers=4),
        )
        self.events.node("Normal", "Starting", "Starting kubelet.")
        if cfg.mqtt.mode != "off":  # twins restored from the cache before the cloud or a broker is up
            self.devices = DevicePlane(
                cfg.mqtt, cfg.node.name, Path(cfg.cache.db), cached=store.list, hub=hub, dmi=cfg.dmi
            )
            await self.devices.open()
            agent.devices = self.devices.on_cloud
        await self.engine.probe()  # /version only: /info is slow on a busy engine
        self.node = NodeStatus(
            hub,
            cfg.node.name,
            state_dir=files.paths.state,
            ip=self.node_ip,
            labels=cfg.node.labels,
            taints=cfg.node.taints,
            with_edge_taint=cfg.node.with_edge_taint,
            runtime_version=lambda: self.engine.version,
            runtime_down=lambda: self.engine.down if self.want_pods else "",  # kubelet: NotReady
            cached_node=lambda: store.get("node", "null", cfg.node.name),
            lease_every=self.lease_every,
            on_registered=agent.drop_stale_pods,
            events=self.events,
        )
        agent.on_node = self.node.cloud_node
        statusd = StatusServer(Path(cfg.status.socket), self.status, self.metrics, tcp=cfg.metrics_address)
        await statusd.start()
        tasks = {
            asyncio.create_task(hub.run(stop), name="edgehub"),
            asyncio.create_task(self.node.run(stop), name="node"),
            asyncio.create_task(self._pods(stop), name="pods"),
            asyncio.create_task(self.engine.run(stop) if self.want_pods else stop.wait(), name="engine"),
            asyncio.create_task(self.events.run(hub.send, stop), name="events"),
            asyncio.create_task(
                renew_forever(
                    files,
                    cfg.hub.server.rsplit(":", 1)[0].strip("[]"),
                    cfg.hub.cert_port,
                    cfg.node.name,
                    hub.reload_identity,
                    stop,
                ),
                name="renew",
            ),
            asyncio.create_task(stop.wait(), name="stop"),
        }
        if self.devices is not None:
            tasks.add(asyncio.create_task(self.devices.run(stop), name="devices"))
        if cfg.usage.interval_seconds > 0:
            tasks.add(asyncio.create_task(self._usage(hub, stop), name="usage"))
        log.info(
            "edge runtime %s started: node %s, cloud %s, cache epoch %s",
            __version__,
            cfg.node.name,
            cfg.hub.server,
            store.epoch,
        )
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # let every task wind down on its own first (the hub closes its socket)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5.0)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for t in done:
                if t.get_name() != "stop":
                    log.info("root task %s ended; stopping", t.get_name())
                t.result()
        finally:
            await self.streams.close()
            await agent.close()
            await statusd.stop()
            await store.close()
            log.info("edge runtime stopped")


async def run(cfg: EdgeConfig, root: Path, stop: asyncio.Event, *, pods: bool = True) -> None:
    """The one entry point the launcher (and tests) call."""
    await EdgeRuntime(cfg, root, pods=pods).run(stop)
