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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.edge.pods import envs, images, labels, observe, status, translate, volumes
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.probes import ProbeSet
from runtime.edge.pods.refs import RefMissing, RefResolver
from runtime.errors import KedgeError, Unreachable

log = logging.getLogger(__name__)


@dataclass
class Ctx:
    docker: DockerAdapter
    node: str
    state_dir: Path
    refs: RefResolver
    host_ip: str
    clock: Callable[[], float]
    ensure_pause: Callable[[], Awaitable[None]]
    wake: Callable[[], None]
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    volume_refresh: float = 10.0


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodWorker:
    def __init__(self, ctx: Ctx, pod: dict[str, Any]) -> None:
        self.ctx, self.pod = ctx, pod
        self.uid: str = pod["metadata"]["uid"]
        self.lock = asyncio.Lock()
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
        self.changed = False

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

    def _cur(self, name: str) -> dict[str, Any] | None:
        hist = self.history.get(name)
        return hist[0] if hist else None

    def pod_ip(self) -> str:
        if translate.host_network(self.pod):
            return self.ctx.host_ip
        sb = self._cur(labels.SANDBOX_NAME)
        return str(sb["NetworkSettings"].get("IPAddress") or "") if sb and observe.running(sb) else ""

    # -- back-off ---------------------------------------------------------------------------------
    def _in_backoff(self, key: str) -> bool:
        delay, last = self.backoff.get(key, (0.0, -1e18))
        return self.ctx.clock() - last < delay

    def _bump(self, key: str) -> None:
        delay, _ = self.backoff.get(key, (0.0, 0.0))
        delay = self.ctx.backoff_initial if delay == 0 else min(delay * 2, self.ctx.backoff_max)
        self.backoff[key] = (delay, self.ctx.clock())

    # -- reconcile --------------------------------------------------------------------------------
    async def sync(self, infos: list[dict[str, Any]]) -> None:
        """One reconcile pass; `self.changed` tells the caller whether docker state was modified."""
        self.changed = False
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
            self.refreshed = self.ctx.clock()
        return self.mounts is not None

    async def _sandbox(self) -> bool:
        sb = self._cur(labels.SANDBOX_NAME)
        if sb is not None and observe.running(sb):
            return True
        attempt = observe.restarts(sb) + 1 if sb is not None else 0
        if sb is not None:  # sandbox lost (docker restart, kill): containers in its netns must go too
            for hist in self.history.values():
                for info in hist:
                    joined = info["HostConfig"].get("NetworkMode") == f"container:{sb['Id']}"
                    if joined and observe.running(info):
                        self.changed = True
                        await self.ctx.docker.kill(info["Id"])
                        self.backoff.pop((info["Config"]["Labels"] or {}).get(labels.CONTAINER, ""), None)
        name, cfg, host = translate.sandbox_config(self.pod, self.ctx.node, attempt)
        try:
            await self.ctx.ensure_pause()
            self.changed = True
            for info in self.history.get(labels.SANDBOX_NAME, []):
                await self.ctx.docker.remove(info["Id"])
            cid = await self.ctx.docker.create(name, host_config=host, **cfg)
            await self.ctx.docker.start(cid)
        except Unreachable:
            raise
        except KedgeError as exc:
            self.waiting["__sandbox__"] = ("ContainerCreating", f"failed to create pod sandbox: {exc}")
            return False
        self.waiting.pop("__sandbox__", None)
        created = await self.ctx.docker.inspect(cid)
        self.history[labels.SANDBOX_NAME] = [created] if created else []
        # env and downwardAPI files may name the pod IP: refresh volumes now that it is known
        self.refreshed = -1e18
        await self._volumes()
        return created is not None and observe.running(created)

    async def _init_containers(self) -> bool:
        policy = self.spec.get("restartPolicy", "Always")
        for c in self.spec.get("initContainers") or []:
            cur = self._cur(c["name"])
            if cur is None:
                await self._start(c, "init", 0)
                return False
            if observe.running(cur):
                return False
            code = int(cur["State"].get("ExitCode", 0))
            if code == 0:
                continue
            if policy == "Never":
                return False
            if self._in_backoff(c["name"]):
                msg = f"back-off restarting failed container {c['name']}"
                self.waiting[c["name"]] = ("CrashLoopBackOff", msg)
                return False
            await self._start(c, "init", observe.restarts(cur) + 1, backoff=True)
            return False
        return True

    async def _app_container(self, c: dict[str, Any]) -> None:
        name, policy = c["name"], self.spec.get("restartPolicy", "Always")
        cur = self._cur(name)
        if cur is None:
            await self._start(c, "app", 0)
            return
        if observe.running(cur):
            live = self.probes.get((name, "liveness"))
            changed = (cur["Config"].get("Labels") or {}).get(labels.HASH) != labels.spec_hash(c)
            if changed or (live is not None and live.cid == cur["Id"] and not live.result):
                why = "spec changed" if changed else "liveness probe failed"
                log.info("pod %s container %s: %s, restarting", self.pod["metadata"]["name"], name, why)
                self.changed = True
                await self._stop_one(cur, c, self._grace(None))
                cur = (await self.ctx.docker.inspect(cur["Id"])) or cur
                self.history[name] = [cur, *self.history[name][1:]]
                if changed:
                    await self._start(c, "app", observe.restarts(cur) + 1)
            return
        code = int(cur["State"].get("ExitCode", 0))
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            self.waiting.pop(name, None)
            return
        if observe.ran_for(cur) > 2 * self.ctx.backoff_max:
            self.backoff.pop(name, None)  # it ran well for a long time: start over (kubelet resets too)
        if self._in_backoff(name):
            self.waiting[name] = ("CrashLoopBackOff", f"back-off restarting failed container {name}")
            return
        await self._start(c, "app", observe.restarts(cur) + 1, backoff=True)

    async def _start(self, c: dict[str, Any], kind: str, restarts: int, backoff: bool = False) -> None:
        name, docker = c["name"], self.ctx.docker
        pull_key = f"pull:{name}"
        if self._in_backoff(pull_key):
            msg = self.waiting.get(name, ("", f'Back-off pulling image "{c["image"]}"'))[1]
            self.waiting[name] = ("ImagePullBackOff", msg)
            return
        try:
            await images.ensure(docker, self.ctx.refs, self.pod, c)
        except images.ImageError as exc:
            self.waiting[name] = (exc.reason, exc.message)
            self._bump(pull_key)
            return
        self.backoff.pop(pull_key, None)
        try:
            env = await envs.resolve(self.ctx.refs, self.pod, c, self.ctx.host_ip, self.pod_ip())
        except RefMissing as exc:
            self.waiting[name] = ("CreateContainerConfigError", str(exc))
            return
        sb = self._cur(labels.SANDBOX_NAME)
        dname, cfg, host = translate.container_config(
            self.pod,
            c,
            kind=kind,
            node=self.ctx.node,
            restarts=restarts,
            env=env,
            volumes=self.mounts or {},
            sandbox_id=sb["Id"] if sb else None,
        )
        cid = ""
        self.changed = True
        try:
            old = self.history.get(name, [])
            for info in old[1:] + [i for i in old[:1] if observe.restarts(i) >= restarts]:
                await docker.remove(info["Id"])  # keep only the previous instance (lastState)
            cid = await docker.create(dname, host_config=host, **cfg)
            await docker.start(cid)
        except Unreachable:
            raise
        except KedgeError as exc:
            self.waiting[name] = ("RunContainerError" if cid else "CreateContainerError", str(exc))
            if backoff:
                self._bump(name)
            return
        self.waiting.pop(name, None)
        if backoff:
            self._bump(name)
        created = await docker.inspect(cid)
        if created:
            prev = [
                i for i in self.history.get(name, [])[:1] if i["Id"] != cid and observe.restarts(i) < restarts
            ]
            self.history[name] = [created, *prev]

    # -- probes -----------------------------------------------------------------------------------
    def _sync_probes(self) -> None:
        running = []
        for c in self.spec.get("containers") or []:
            cur = self._cur(c["name"])
            if cur is not None and observe.running(cur):
                running.append((c, str(cur["Id"])))
        self.probes.sync(
            self.ctx.docker, running, self.pod_ip() or "127.0.0.1", self.ctx.wake, self._reported
        )

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
    def _grace(self, grace: int | None) -> int:
        if grace is not None:
            return max(0, int(grace))
        meta = self.pod.get("metadata", {})
        if meta.get("deletionGracePeriodSeconds") is not None:
            return int(meta["deletionGracePeriodSeconds"])
        return int(self.spec.get("terminationGracePeriodSeconds", 30))

    async def _stop_one(self, info: dict[str, Any], c: dict[str, Any] | None, grace: int) -> None:
        """preStop (bounded by the grace period), then SIGTERM and SIGKILL at the end of the grace."""
        start = self.ctx.clock()
        hook = ((c or {}).get("lifecycle") or {}).get("preStop")
        if hook and observe.running(info):
            from runtime.edge.pods.probes import run_handler

            await run_handler(self.ctx.docker, info["Id"], c or {}, hook, self.pod_ip(), max(grace, 1))
        left = max(0, round(grace - (self.ctx.clock() - start)))
        if observe.running(info):
            try:
                await self.ctx.docker.stop(info["Id"], grace=left)
            except KedgeError as exc:
                log.warning("stopping %s: %s", info["Id"][:12], exc)

    async def terminate(self, grace: int | None) -> None:
        """Graceful stop of every container, app containers in parallel; the sandbox last."""
        self.deleting = True
        self.stop_probes()
        g = self._grace(grace)
        specs = {c["name"]: c for c in self.spec.get("containers") or []}
        jobs = [
            self._stop_one(h[0], specs.get(n), g)
            for n, h in self.history.items()
            if h and n != labels.SANDBOX_NAME
        ]
        await asyncio.gather(*jobs)
        for info in self.history.get(labels.SANDBOX_NAME, [])[:1]:
            await self._stop_one(info, None, 0)

    # -- status -----------------------------------------------------------------------------------
    def observation(self) -> status.PodObs:
        obs = status.PodObs(
            host_ip=self.ctx.host_ip,
            pod_ip=self.pod_ip() or None,
            start_time=self.start_time or None,
            terminating=self.deleting,
        )
        sb = self._cur(labels.SANDBOX_NAME)
        obs.sandbox_ready = (
            not self.deleting
            and self.mounts is not None
            and (translate.host_network(self.pod) or (sb is not None and observe.running(sb)))
        )
        initializing = False
        for kind, key in (("init", "initContainers"), ("app", "containers")):
            for c in self.spec.get(key) or []:
                o = observe.container(c["name"], c["image"], self.history.get(c["name"], []))
                if kind == "init" and not (o.terminated and o.terminated.exit_code == 0):
                    initializing = True
                if kind == "app" and initializing and not o.container_id:
                    o.waiting_reason = "PodInitializing"
                pod_wait = self.waiting.get("__mount__") or self.waiting.get("__sandbox__")
                wait = self.waiting.get(c["name"]) or (pod_wait if not o.container_id else None)
                if wait and o.running_since is None:
                    o.waiting_reason, o.waiting_message = wait
                    if o.terminated is not None:
                        o.last, o.terminated = o.terminated, None
                startup = self.probes.get((c["name"], "startup"))
                ready = self.probes.get((c["name"], "readiness"))
                cid = o.container_id.removeprefix("docker://")
                o.started = (
                    o.running_since is not None
                    and (startup is None or (startup.cid == cid and startup.result))
                    and not (c.get("startupProbe") and startup is None)
                )
                if kind == "app":
                    o.ready = o.started and (
                        ready.result and ready.cid == cid if ready else not c.get("readinessProbe")
                    )
                else:  # kubelet reports a successfully completed init container as ready
                    o.ready = o.terminated is not None and o.terminated.exit_code == 0
                (obs.init if kind == "init" else obs.containers).append(o)
        return obs

    def build_status(self) -> dict[str, Any]:
        return status.build(self.pod, self.observation(), self.status, now_iso())
