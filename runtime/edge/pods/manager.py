"""PodManager: the edge's kubelet on the Docker Engine, hosted by the edge runtime.

    mgr = PodManager(DockerAdapter(), node_name="edge-1", state_dir=paths.state, refs=cache,
                     on_status=send_podpatch)
    await mgr.start()                  # adopt containers already running (labels, this node only)
    await mgr.sync_pod(pod)            # desired state from the cache / the cloud
    await mgr.run(stop_event)          # restarts, probes, status emission
    await mgr.delete_pod(pod, grace)   # graceful stop, containers removed

Pods start concurrently, at most `parallel` changing containers at once (slots.py); each pod's own steps
stay ordered by its worker's lock (sandbox, init containers one by one, app containers, deletion). The
periodic reconcile never waits for a pod that is busy (a pull, a hanging engine call): it passes over it.

It never stops containers on its own shutdown (pods outlive the runtime: autonomy), and it never
touches a container without `io.kedge.managed=true` and this node's `io.kedge.node` label.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.edge.events import Recorder
from runtime.edge.pods import labels, volumes
from runtime.edge.pods.adapter import DockerAdapter
from runtime.edge.pods.refs import RefResolver
from runtime.edge.pods.sandbox import PAUSE_IMAGE, rootfs_tar
from runtime.edge.pods.slots import StartBound, default_parallel
from runtime.edge.pods.status import display_status, runtime_down
from runtime.edge.pods.worker import Ctx, PodWorker, now_iso
from runtime.errors import KedgeError, Unreachable

log = logging.getLogger(__name__)
OnStatus = Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]]
OnDeleted = Callable[[dict[str, Any]], Awaitable[None]]
_GONE_MAX = 4096


def _intent(pod: dict[str, Any]) -> tuple[Any, Any]:
    """What the pod asks of this node: its spec and metadata, without what every write bumps. A cloud
    update that differs only in status is the echo of the edge's own report; the periodic reconcile
    still catches crashed containers."""
    meta = {
        k: v for k, v in (pod.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")
    }
    return pod.get("spec"), meta


def default_host_ip() -> str:
    """The address of the interface holding the default route (no packet is sent), else loopback."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return str(s.getsockname()[0])
    return "127.0.0.1"


class PodManager:
    def __init__(
        self,
        docker: DockerAdapter,
        *,
        node_name: str,
        state_dir: Path,
        refs: RefResolver,
        on_status: OnStatus,
        clock: Callable[[], float] = time.monotonic,
        host_ip: str | None = None,
        backoff_initial: float = 10.0,
        backoff_max: float = 300.0,
        sync_period: float = 1.0,
        volume_refresh: float = 10.0,
        on_deleted: OnDeleted | None = None,
        parallel: int = 0,
        slow_call: float = 10.0,
        events: Recorder | None = None,
        logs: dict[str, Any] | None = None,
    ) -> None:
        self.docker, self.node, self.on_status, self.on_deleted = docker, node_name, on_status, on_deleted
        self._gone: dict[str, None] = {}  # uids deleted here (bounded), so late updates do not revive them
        self.sync_period = sync_period
        self._wake = asyncio.Event()
        self._pause_lock = asyncio.Lock()
        self.ctx = Ctx(
            docker=docker,
            node=node_name,
            state_dir=Path(state_dir),
            refs=refs,
            host_ip=host_ip or default_host_ip(),
            clock=clock,
            ensure_pause=self._ensure_pause,
            wake=self._wake.set,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            volume_refresh=volume_refresh,
            bound=StartBound(parallel or default_parallel(), slow_call),
            events=events,
            **({"logs": logs} if logs else {}),
        )
        self._passes: dict[str, asyncio.Task[None]] = {}  # periodic reconciles still running, by uid
        self.pods: dict[str, PodWorker] = {}
        self.adopted: dict[str, list[dict[str, Any]]] = {}  # uid -> inspected containers, before sync_pod
        self._inspect: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (list State, inspect)
        self._errors: dict[str, int] = {}
        self._started = False  # start() listed the node's containers: pods not adopted then have none

    # -- docker view ------------------------------------------------------------------------------
    async def _containers(self, uid: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Inspected managed containers of this node by pod uid (inspect cached until State changes)."""
        sel = labels.selector(self.node)
        if uid:
            sel[labels.POD_UID] = uid
        out: dict[str, list[dict[str, Any]]] = {}
        seen: set[str] = set()
        for s in await self.docker.list_containers(sel):
            cid, state = s["Id"], s.get("State", "")
            seen.add(cid)
            cached = self._inspect.get(cid)
            if (
                cached is None
                or cached[0] != state
                or (state == "running" and not cached[1]["State"]["Running"])
            ):
                info = await self.docker.inspect(cid)
                if info is None:
                    continue
                self._inspect[cid] = (state, info)
            out.setdefault(s["Labels"].get(labels.POD_UID, ""), []).append(self._inspect[cid][1])
        if uid is None:
            for cid in [c for c in self._inspect if c not in seen]:
                del self._inspect[cid]
        return out

    async def _ensure_pause(self) -> None:
        async with self._pause_lock:  # checked per sandbox: someone may have pruned it meanwhile
            if await self.docker.image(PAUSE_IMAGE) is None:
                repo, _, tag = PAUSE_IMAGE.rpartition(":")
                log.info("importing sandbox image %s", PAUSE_IMAGE)
                await self.docker.import_image(rootfs_tar(), repo, tag, ['ENTRYPOINT ["/pause"]'])

    # -- public interface -------------------------------------------------------------------------
    async def start(self) -> None:
        """Adopt what is running: containers stay untouched until their pod is synced or orphaned."""
        self.adopted = await self._containers()
        self._started = True
        log.info("adopted %d containers of %d pods", sum(map(len, self.adopted.values())), len(self.adopted))

    async def sync_pod(self, pod: dict[str, Any]) -> None:
        """Make the pod's containers match `pod` (awaits one reconcile, image pulls included: callers
        that must not wait should run it in a task). A pod with deletionTimestamp is terminated."""
        uid = pod["metadata"]["uid"]
        if uid in self._gone:
            return
        if pod["metadata"].get("deletionTimestamp"):
            if not (uid in self.pods and self.pods[uid].deleting):
                await self.delete_pod(pod, pod["metadata"].get("deletionGracePeriodSeconds"))
            return
        worker = self.pods.get(uid)
        infos: list[dict[str, Any]] | None = None
        if worker is None:
            worker = self.pods[uid] = PodWorker(self.ctx, pod)
            if self.adopted.pop(uid, None) is None and self._started:
                infos = []  # a pod new to this runtime has no containers yet: nothing to list
        else:
            old = worker.pod
            worker.pod = pod
            if _intent(old) == _intent(pod) and not worker.stale:
                return  # the echo of our own podpatch (or a resourceVersion bump): nothing to reconcile
            if (old.get("spec") or {}).get("volumes") != (pod.get("spec") or {}).get("volumes"):
                worker.refreshed = -1e18
        await self._sync(worker, infos)

    async def _sync(
        self, worker: PodWorker, infos: list[dict[str, Any]] | None = None, generation: int = -1
    ) -> None:
        """Reconcile `worker` over `infos` (listed when None, or when the worker changed docker since
        `generation`), then report its status — from what the worker itself saw when nothing is stale."""
        async with worker.lock:
            if infos is None or generation not in (-1, worker.generation):
                infos = (await self._containers(worker.uid)).get(worker.uid, [])
            try:
                await worker.sync(infos)
                self._errors.pop(worker.uid, None)
            except KedgeError as exc:
                worker.stale = True
                self._log_error(worker.uid, f"pod {worker.pod['metadata'].get('name')}: {exc}")
            except Exception as exc:  # a malformed spec must not take the runtime down
                worker.stale = True
                if self._log_error(worker.uid, f"pod {worker.pod['metadata'].get('name')}: {exc!r}"):
                    log.exception("reconciling pod %s", worker.pod["metadata"].get("name"))
            finally:
                worker.slot.release()  # the status below is not the engine's work: the next pod starts
            worker.generation += worker.changed
            if not worker.deleting:
                if worker.changed and worker.stale:
                    try:
                        worker.load((await self._containers(worker.uid)).get(worker.uid, []))
                    except KedgeError as exc:
                        self._log_error(worker.uid, f"pod {worker.pod['metadata'].get('name')}: {exc}")
                await self._emit(worker)

    async def _emit(self, worker: PodWorker, st: dict[str, Any] | None = None) -> None:
        """Report `st` (the worker's observed status when None) if it changed."""
        st = worker.build_status() if st is None else st
        if st != worker.status:
            worker.status = st
            try:
                await self.on_status(worker.pod, st)
            except Exception:
                log.exception("on_status for pod %s failed", worker.pod["metadata"].get("name"))

    def _log_error(self, key: str, msg: str) -> bool:
        """Say a repeating failure once (design.md §3), then count; True when it was logged."""
        n = self._errors.get(key, 0)
        self._errors[key] = n + 1
        if n == 0:
            log.warning("%s", msg)
        return n == 0

    async def refresh_volumes(self, namespace: str | None = None) -> None:
        """Rewrite configmap/secret/projected volumes now (call when the cache saw such an object change)."""
        for w in list(self.pods.values()):
            if namespace is None or w.pod["metadata"].get("namespace", "default") == namespace:
                w.refreshed = -1e18
        self._wake.set()

    async def delete_pod(self, pod: dict[str, Any], grace: int | None = None) -> None:
        """Graceful stop (preStop, SIGTERM, SIGKILL after the grace), final status, containers removed,
        then `on_deleted(pod)` — the runtime's cue to send the final delete with the UID precondition."""
        await self._delete(pod, grace, report=True)

    async def _delete(self, pod: dict[str, Any], grace: int | None, report: bool) -> None:
        uid = pod["metadata"]["uid"]
        known = uid in self.pods
        worker = self.pods.get(uid) or PodWorker(self.ctx, pod)
        if known and pod.get("spec"):
            worker.pod = pod
        self.pods[uid] = worker
        worker.abandon.set()  # a pass stuck in a pull ends now (the pull alone is left to the engine)
        async with worker.lock:
            worker.load((await self._containers(uid)).get(uid, []))
            had_containers = bool(worker.history)
            await worker.terminate(grace)
            worker.load((await self._containers(uid)).get(uid, []))
            final = worker.build_status()
            if report and (known or had_containers) and final != worker.status:
                worker.status = final
                try:
                    await self.on_status(worker.pod, final)
                except Exception:
                    log.exception("final status of %s", pod["metadata"].get("name"))
            for infos in worker.history.values():
                for info in infos:
                    await self.docker.remove(info["Id"])
            await volumes.remove(self.ctx.state_dir / "pods" / uid)
        self.pods.pop(uid, None)
        self.adopted.pop(uid, None)
        self._gone[uid] = None
        while len(self._gone) > _GONE_MAX:
            del self._gone[next(iter(self._gone))]
        if report and self.on_deleted is not None:
            try:
                await self.on_deleted(pod)
            except Exception:
                log.exception("on_deleted for pod %s failed", pod["metadata"].get("name"))

    async def remove_orphans(self, known_uids: set[str]) -> None:
        """Stop and remove containers (and volume dirs) of pods not in `known_uids`."""
        for uid, infos in (await self._containers()).items():
            if uid in known_uids:
                continue
            grace = int((infos[0]["Config"].get("Labels") or {}).get(labels.GRACE, "30"))
            meta = {
                "uid": uid,
                "name": infos[0]["Config"]["Labels"].get(labels.POD_NAME, uid),
                "namespace": infos[0]["Config"]["Labels"].get(labels.POD_NS, "default"),
            }
            log.info("removing orphaned pod %s/%s (%s)", meta["namespace"], meta["name"], uid)
            worker = self.pods.get(uid)
            await self._delete(worker.pod if worker else {"metadata": meta, "spec": {}}, grace, report=False)
        pods_dir = self.ctx.state_dir / "pods"
        if pods_dir.is_dir():
            for d in pods_dir.iterdir():
                if d.name not in known_uids and d.name not in self.pods:
                    await volumes.remove(d)

    def local_status(self) -> list[dict[str, Any]]:
        """Rows for `kedge status`: namespace, name, uid, phase, status (kubectl's STATUS column), ready
        (n/m), restarts, age (seconds)."""
        rows = []
        for w in self.pods.values():
            st = w.status or {}
            cs = st.get("containerStatuses") or []
            age = 0
            if w.start_time:
                with contextlib.suppress(ValueError):
                    age = int(
                        time.time() - calendar.timegm(time.strptime(w.start_time, "%Y-%m-%dT%H:%M:%SZ"))
                    )
            rows.append(
                {
                    "namespace": w.pod["metadata"].get("namespace", "default"),
                    "name": w.pod["metadata"]["name"],
                    "uid": w.uid,
                    "phase": st.get("phase", "Pending"),
                    "status": display_status(st, deleting=w.deleting),
                    "ready": f"{sum(1 for c in cs if c.get('ready'))}/{len(cs)}",
                    "restarts": sum(int(c.get("restartCount", 0)) for c in cs),
                    "age": max(0, age),
                }
            )
        return sorted(rows, key=lambda r: (r["namespace"], r["name"]))

    async def reconcile_all(self) -> None:
        """One pass over every pod not busy already (a start, a pull, a stop under way): those are
        passed over, so one pod's hanging pull or engine call never holds up the others' restarts and
        status. Returns when the passes are done or after `sync_period`, whichever comes first; a pass
        still running then goes on, and the next call passes over its pod."""
        workers = [
            w for w in self.pods.values() if not (w.deleting or w.lock.locked() or w.uid in self._passes)
        ]
        gens = {w.uid: w.generation for w in workers}  # before listing: a worker busy meanwhile re-lists
        try:
            groups = await self._containers()
        except KedgeError as exc:
            self._log_error("docker", f"listing containers: {exc}")
            if isinstance(exc, Unreachable):
                await self._runtime_down()
            return
        self._errors.pop("docker", None)
        started = [self._pass(w, groups.get(w.uid, []), gens[w.uid]) for w in workers]
        if started:
            await asyncio.wait(started, timeout=self.sync_period)

    async def _runtime_down(self) -> None:
        """The engine does not answer: every pod reported not ready (its last status otherwise kept);
        the first pass after the engine is back reports what it then sees."""
        for w in list(self.pods.values()):
            if not w.deleting and w.status:
                await self._emit(w, runtime_down(w.status, now_iso()))

    def _pass(self, w: PodWorker, infos: list[dict[str, Any]], generation: int) -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await self._sync(w, infos, generation)
            except Exception as exc:
                self._log_error(w.uid, f"pod {w.pod['metadata'].get('name')}: {exc!r}")
            finally:
                self._passes.pop(w.uid, None)

        task = self._passes[w.uid] = asyncio.create_task(run(), name=f"reconcile-{w.uid}")
        return task

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile every sync_period (sooner when a probe flips) until `stop` is set; passes still
        running then (a hanging pull) are cancelled."""
        try:
            while not stop.is_set():
                self._wake.clear()
                await self.reconcile_all()
                waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=self.sync_period, return_when=asyncio.FIRST_COMPLETED)
                for f in waits:
                    f.cancel()
        finally:
            passes = list(self._passes.values())
            for t in passes:
                t.cancel()
            await asyncio.gather(*passes, return_exceptions=True)

    async def stop(self) -> None:
        """Stop probing; containers keep running (the next start adopts them)."""
        for w in self.pods.values():
            w.stop_probes()


__all__ = ["PodManager", "default_host_ip"]
