"""One pod's reconcile: volumes → sandbox → init containers in order → app containers, then status.

kubelet's SyncPod, reduced to what an edge needs. Decisions read the docker containers carrying the
pod's labels, so a fresh worker over existing containers (runtime restarted) adopts them: a running
container whose spec hash matches is left alone. Restarts follow restartPolicy with kubelet's back-off
(initial doubling to max; both configurable for tests).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.edge.events import NORMAL, WARNING, Recorder
from runtime.edge.pods import labels, observe, starting, status, stopping, translate, volumes
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.probes import ProbeSet
from runtime.edge.pods.refs import RefMissing, RefResolver
from runtime.edge.pods.slots import PodSlot, StartBound, default_parallel
from runtime.errors import KedgeError, NotFound, Unreachable

log = logging.getLogger(__name__)


@dataclass
class Ctx:
    docker: DockerAdapter
    node: str
    state_dir: Path
    refs: RefResolver
    host_ip: str
    clock: Callable[[], float]
    ensure_pause: Callable[[], Awaitable[None]]  # import the sandbox image (create found it missing)
    wake: Callable[[], None]
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    volume_refresh: float = 10.0
    bound: StartBound = field(default_factory=lambda: StartBound(default_parallel()))
    events: Recorder | None = None  # kubelet's events about the pods (runtime/edge/events.py)
    logs: dict[str, Any] = field(default_factory=lambda: translate.LOG_CONFIG)  # the containers' log opts


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodWorker:
    def __init__(self, ctx: Ctx, pod: dict[str, Any]) -> None:
        self.ctx, self.pod = ctx, pod
        self.uid: str = pod["metadata"]["uid"]
        self.lock = asyncio.Lock()
        self.slot = PodSlot(ctx.bound)  # held from a pass's first container change to its end
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.waiting: dict[str, tuple[str, str]] = {}
        self.backoff: dict[str, tuple[float, float]] = {}  # key -> (delay, last attempt)
        self.probes = ProbeSet()
        self.tokens = volumes.TokenCache()
        self.mounts: dict[str, volumes.Volume] | None = None
        self.refreshed = -1e18
        # the status the cloud already holds (a cached pod carries it): an adopted, unchanged pod
        # then sends nothing after a runtime restart, and transition times continue where they were
        known = pod.get("status") or {}
        self.status: dict[str, Any] | None = dict(known) if known.get("conditions") else None
        self.start_time: str = (pod.get("status") or {}).get("startTime") or ""
        self.deleting = False
        self.abandon = asyncio.Event()  # set when deletion starts: a pull under way is not waited for
        self.changed = self.stale = False  # stale: docker changed in a way `history` does not show
        self.generation = 0  # reconciles that changed docker (a listing older than that is outdated)

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self.pod.get("spec") or {})

    @property
    def vol_root(self) -> Path:
        return self.ctx.state_dir / "pods" / self.uid / "volumes"

    # -- observation ------------------------------------------------------------------------------
    def load(self, infos: list[dict[str, Any]]) -> None:
        self.history = observe.sort_history(infos)
        if not self.start_time:
            created = sorted(observe.ts(i.get("Created")) for i in infos)
            self.start_time = created[0] if created else now_iso()

    def current(self, name: str) -> dict[str, Any] | None:
        hist = self.history.get(name)
        return hist[0] if hist else None

    def pod_ip(self) -> str:
        if translate.host_network(self.pod):
            return self.ctx.host_ip
        sb = self.current(labels.SANDBOX_NAME)
        return str(sb["NetworkSettings"].get("IPAddress") or "") if sb and observe.running(sb) else ""

    def event(self, container: str | None, type_: str, reason: str, message: str, init: bool = False) -> None:
        """Record a kubelet event about this pod (or one of its containers)."""
        if self.ctx.events is not None:
            self.ctx.events.pod(self.pod, container, type_, reason, message, init)

    # -- back-off ---------------------------------------------------------------------------------
    def in_backoff(self, key: str) -> bool:
        delay, last = self.backoff.get(key, (0.0, -1e18))
        return self.ctx.clock() - last < delay

    def bump(self, key: str) -> None:
        delay, _ = self.backoff.get(key, (0.0, 0.0))
        delay = self.ctx.backoff_initial if delay == 0 else min(delay * 2, self.ctx.backoff_max)
        self.backoff[key] = (delay, self.ctx.clock())

    # -- reconcile --------------------------------------------------------------------------------
    async def sync(self, infos: list[dict[str, Any]]) -> None:
        """One reconcile pass; `self.changed` tells the caller whether docker state was modified and
        `self.stale` whether `history` may differ from it (else the status can be built right away)."""
        self.changed = self.stale = False
        self.load(infos)
        if self.deleting:
            return
        if not await self._volumes():
            return
        if not translate.host_network(self.pod) and not await self._sandbox():
            return
        if not await self._init_containers():
            return
        # app containers are independent (state is keyed by container name): start them together
        await asyncio.gather(*(self._app_container(c) for c in self.spec.get("containers") or []))
        self._sync_probes()

    async def _volumes(self) -> bool:
        if self.mounts is not None and self.ctx.clock() - self.refreshed < self.ctx.volume_refresh:
            return True
        try:
            self.mounts, _ = await volumes.materialise(
                self.ctx.refs,
                self.pod,
                self.vol_root,
                self.tokens,
                self.ctx.host_ip,
                self.pod_ip(),
                self.ctx.clock(),
            )
            self.refreshed = self.ctx.clock()
            self.waiting.pop("__mount__", None)
        except (RefMissing, OSError, ValueError) as exc:
            self.waiting["__mount__"] = ("ContainerCreating", f"MountVolume.SetUp failed: {exc}")
            self.event(None, WARNING, "FailedMount", f"MountVolume.SetUp failed: {exc}")
            self.refreshed = self.ctx.clock()
        return self.mounts is not None

    async def _sandbox(self) -> bool:
        sb = self.current(labels.SANDBOX_NAME)
        if sb is not None and observe.running(sb):
            return True
        attempt = observe.restarts(sb) + 1 if sb is not None else 0
        await self.slot.take()
        if sb is not None:  # sandbox lost (docker restart, kill): containers in its netns must go too
            for hist in self.history.values():
                for info in hist:
                    joined = info["HostConfig"].get("NetworkMode") == f"container:{sb['Id']}"
                    if joined and observe.running(info):
                        self.changed = True
                        await self.ctx.docker.kill(info["Id"])
                        self.backoff.pop((info["Config"]["Labels"] or {}).get(labels.CONTAINER, ""), None)
        name, cfg, host = translate.sandbox_config(self.pod, self.ctx.node, attempt)
        self.changed = True
        try:
            for info in self.history.pop(labels.SANDBOX_NAME, []):
                await self.ctx.docker.remove(info["Id"])
            cid = await self._create_sandbox(name, cfg, host)
            # docker needs the sandbox to exist for a `container:<id>` create, to run only for the start:
            # the containers that run first are created while it starts (runc + network take long)
            for r in await asyncio.gather(
                self.slot.call(self.ctx.docker.start(cid)),
                starting.precreate(self, cid),
                return_exceptions=True,
            ):
                if isinstance(r, BaseException):
                    raise r
        except Unreachable:
            raise
        except KedgeError as exc:
            self.stale = True
            self.waiting["__sandbox__"] = ("ContainerCreating", f"failed to create pod sandbox: {exc}")
            self.event(None, WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {exc}")
            return False
        self.waiting.pop("__sandbox__", None)
        created = await self.ctx.docker.inspect(cid)
        self.history[labels.SANDBOX_NAME] = [created] if created else []
        self.stale |= created is None
        # env and downwardAPI files may name the pod IP: refresh volumes now that it is known
        self.refreshed = -1e18
        await self._volumes()
        return created is not None and observe.running(created)

    async def _create_sandbox(self, name: str, cfg: dict[str, Any], host: dict[str, Any]) -> str:
        try:
            return await self.slot.call(self.ctx.docker.create(name, host_config=host, **cfg))
        except NotFound:  # the sandbox image is missing (first pod, or pruned): build it, once more
            await self.ctx.ensure_pause()
            return await self.slot.call(self.ctx.docker.create(name, host_config=host, **cfg))

    async def _init_containers(self) -> bool:
        policy = self.spec.get("restartPolicy", "Always")
        for c in self.spec.get("initContainers") or []:
            cur = self.current(c["name"])
            if cur is None or observe.never_started(cur):
                await starting.start(self, c, "init", observe.restarts(cur) if cur else 0)
                return False
            if observe.running(cur):
                return False
            code = int(cur["State"].get("ExitCode", 0))
            if code == 0:
                continue
            if policy == "Never":
                return False
            if self.in_backoff(c["name"]):
                msg = f"back-off restarting failed container {c['name']}"
                self.waiting[c["name"]] = ("CrashLoopBackOff", msg)
                self.event(c["name"], WARNING, "BackOff", self._backoff_message(c["name"]), init=True)
                return False
            await starting.start(self, c, "init", observe.restarts(cur) + 1, backoff=True)
            return False
        return True

    async def _app_container(self, c: dict[str, Any]) -> None:
        name, policy = c["name"], self.spec.get("restartPolicy", "Always")
        cur = self.current(name)
        if cur is None or observe.never_started(cur):
            await starting.start(self, c, "app", observe.restarts(cur) if cur else 0)
            return
        if observe.running(cur):
            live = self.probes.get((name, "liveness"))
            changed = (cur["Config"].get("Labels") or {}).get(labels.HASH) != labels.spec_hash(c)
            if changed or (live is not None and live.cid == cur["Id"] and not live.result):
                why = "spec changed" if changed else "liveness probe failed"
                self.event(name, NORMAL, "Killing", _kill_message(name, changed))
                log.info("pod %s container %s: %s, restarting", self.pod["metadata"]["name"], name, why)
                self.changed = True
                await self._stop_one(cur, c, stopping.grace_period(self.pod, None))
                cur = (await self.ctx.docker.inspect(cur["Id"])) or cur
                self.history[name] = [cur, *self.history[name][1:]]
                if changed:
                    await starting.start(self, c, "app", observe.restarts(cur) + 1)
            return
        code = int(cur["State"].get("ExitCode", 0))
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            self.waiting.pop(name, None)
            return
        if observe.ran_for(cur) > 2 * self.ctx.backoff_max:
            self.backoff.pop(name, None)  # it ran well for a long time: start over (kubelet resets too)
        if self.in_backoff(name):
            self.waiting[name] = ("CrashLoopBackOff", f"back-off restarting failed container {name}")
            self.event(name, WARNING, "BackOff", self._backoff_message(name))
            return
        await starting.start(self, c, "app", observe.restarts(cur) + 1, backoff=True)

    def _backoff_message(self, name: str) -> str:
        meta = self.pod["metadata"]
        pod = f"{meta.get('name', '')}_{meta.get('namespace', 'default')}({self.uid})"
        return f"Back-off restarting failed container {name} in pod {pod}"

    # -- probes -----------------------------------------------------------------------------------
    def _sync_probes(self) -> None:
        running = []
        for c in self.spec.get("containers") or []:
            cur = self.current(c["name"])
            if cur is not None and observe.running(cur):
                running.append((c, str(cur["Id"])))
        self.probes.sync(
            self.ctx.docker,
            running,
            self.pod_ip() or "127.0.0.1",
            self.ctx.wake,
            self._reported,
            self._probe_failed,
        )

    def _probe_failed(self, container: str, kind: str, detail: str) -> None:
        self.event(container, WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {detail}")

    def _reported(self, name: str, cid: str) -> dict[str, Any] | None:
        """The status last reported for this very container instance (the cached pod carries it)."""
        for cs in (self.pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == name and cs.get("containerID") == f"docker://{cid}":
                return dict(cs)
        if self.status:  # same process: what we emitted ourselves
            for cs in self.status.get("containerStatuses") or []:
                if cs.get("name") == name and cs.get("containerID") == f"docker://{cid}":
                    return dict(cs)
        return None

    def stop_probes(self) -> None:
        self.probes.stop_all()

    # -- deletion ---------------------------------------------------------------------------------
    def _stop_one(self, info: dict[str, Any], c: dict[str, Any] | None, grace: int) -> Awaitable[None]:
        name = (c or {}).get("name", "")

        def hook_failed() -> None:  # kubelet leaves the hook's output out: it may hold secrets
            self.event(name, WARNING, "FailedPreStopHook", "PreStopHook failed")

        return stopping.stop(self.ctx.docker, self.ctx.clock, info, c, grace, self.pod_ip(), hook_failed)

    async def terminate(self, grace: int | None) -> None:
        """Graceful stop of every container, app containers in parallel; the sandbox last."""
        self.deleting = True
        self.stop_probes()
        g = stopping.grace_period(self.pod, grace)
        specs = {c["name"]: c for c in self.spec.get("containers") or []}
        jobs = []
        for n, h in self.history.items():
            if h and n != labels.SANDBOX_NAME:
                if observe.running(h[0]):
                    self.event(n, NORMAL, "Killing", f"Stopping container {n}", init=n not in specs)
                jobs.append(self._stop_one(h[0], specs.get(n), g))
        await asyncio.gather(*jobs)
        for info in self.history.get(labels.SANDBOX_NAME, [])[:1]:
            await self._stop_one(info, None, 0)

    # -- status -----------------------------------------------------------------------------------
    def build_status(self) -> dict[str, Any]:
        return status.build(self.pod, observe.pod(self), self.status, now_iso())


def _kill_message(name: str, spec_changed: bool) -> str:
    if spec_changed:
        return f"Container {name} definition changed, will be restarted"
    return f"Container {name} failed liveness probe, will be restarted"
