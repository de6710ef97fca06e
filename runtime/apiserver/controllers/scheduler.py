"""The scheduler: binds pending pods (no nodeName, schedulerName default-scheduler) to a node that fits.

As kube-scheduler does: filter nodes (fit.py), pick the least allocated, POST `pods/<name>/binding`
and record a `Scheduled` event; when nothing fits, set `PodScheduled=False, Unschedulable` with the
`0/N nodes are available: …` message and a `FailedScheduling` event, and retry when nodes or pods
change. A pod just bound is "assumed" on its node until the watch shows it, so a burst of pods
(a 100-replica Deployment) is accounted correctly without waiting for each bind's echo.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Coroutine
from fractions import Fraction
from typing import Any

from runtime.apiserver.controllers import fit
from runtime.apiserver.controllers.base import Informers, Obj, WorkQueue, run_all, run_worker
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.errors import KedgeError
from runtime.kube.errors import Conflict, KubeNotFound
from runtime.kube.resources import EVENTS, NODES, PODS

SCHEDULER_NAME = "default-scheduler"
log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pending(pod: Obj) -> bool:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    return (
        not spec.get("nodeName")
        and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
        and not meta.get("deletionTimestamp")
        and not fit.is_terminal(pod)
    )


def _key(pod: Obj) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


class Scheduler:
    name = "scheduler"

    def __init__(self, informers: Informers, *, health: ControllerHealth | None = None) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.queue = WorkQueue()
        self.assumed: dict[str, tuple[str, Obj]] = {}  # pod key -> (node, pod) until the watch shows it
        self.reported: dict[str, str] = {}  # pod key -> last Unschedulable message written
        self.pods = informers.get(PODS, on_change=self.health.guard(self.name, self._pod_changed))
        self._binding = asyncio.Semaphore(4)  # binds in flight
        # incremental accounting: what each node's pods (bound or assumed) request, by pod key
        self.counted: dict[str, tuple[str, dict[str, Fraction]]] = {}
        self.usage: dict[str, fit.NodeUsage] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.nodes = informers.get(NODES, on_change=self.health.guard(self.name, self._node_changed))

    async def run(self) -> None:
        async def worker() -> None:
            await self.pods.synced.wait()
            await self.nodes.synced.wait()
            for pod in self.pods.items():
                if _pending(pod):
                    self.queue.add(_key(pod))
            await run_worker(self.name, self.queue, self.schedule, self.health)

        await run_all(self.name, self.pods.run(), self.nodes.run(), worker())

    # -- events -----------------------------------------------------------------------------------

    def _retry_pending(self) -> None:
        for key in list(self.reported):
            self.queue.add(key)

    def _count(self, key: str, node: str, pod: Obj) -> None:
        if key in self.counted and self.counted[key][0] == node:
            return
        self._uncount(key)
        requests = fit.pod_requests(pod)
        self.counted[key] = (node, requests)
        self.usage.setdefault(node, fit.NodeUsage()).add_requests(requests)

    def _uncount(self, key: str) -> None:
        old = self.counted.pop(key, None)
        if old is not None:
            self.usage[old[0]].add_requests(old[1], -1)

    def _unassume(self, key: str, target: str) -> None:
        """Undo an assumption whose bind failed (unless the watch already placed the pod for real)."""
        if self.assumed.pop(key, None) is None:
            return
        namespace, _, name = key.partition("/")
        cached = self.pods.get(namespace, name)
        if (
            not (cached and (cached.get("spec") or {}).get("nodeName"))
            and self.counted.get(key, ("",))[0] == target
        ):
            self._uncount(key)

    def _pod_changed(self, typ: str, pod: Obj, prev: Obj | None) -> None:
        key = _key(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if typ == "DELETED" or fit.is_terminal(pod):
            self._uncount(key)
        elif node:
            self._count(key, node, pod)
        if typ == "DELETED" or node:
            self.assumed.pop(key, None)
            self.reported.pop(key, None)
            if typ == "DELETED" or fit.is_terminal(pod):
                self._retry_pending()  # resources were freed
        elif _pending(pod) and self.pods.synced.is_set():
            self.queue.add(key)

    def _node_changed(self, typ: str, node: Obj, prev: Obj | None) -> None:
        if (
            prev is None
            or typ == "DELETED"
            or (node.get("spec"), node.get("metadata", {}).get("labels"))
            != (prev.get("spec"), prev.get("metadata", {}).get("labels"))
            or fit.is_ready(node) != fit.is_ready(prev)
            or (node.get("status") or {}).get("allocatable") != (prev.get("status") or {}).get("allocatable")
        ):
            self._retry_pending()

    # -- one pod ----------------------------------------------------------------------------------

    async def schedule(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        pod = self.pods.get(namespace, name)
        if pod is None or not _pending(pod) or key in self.assumed:
            return
        usage = self.usage
        nodes = sorted(self.nodes.items(), key=lambda n: n["metadata"]["name"])
        fits: list[tuple[float, str]] = []
        reasons: list[str] = []
        for node in nodes:
            used = usage.get(node["metadata"]["name"]) or fit.NodeUsage()
            why = fit.filter_node(pod, node, used)
            if why is None:
                fits.append((fit.score(pod, node, used), node["metadata"]["name"]))
            else:
                reasons.append(why)
        if not fits:
            await self._unschedulable(pod, fit.unschedulable_message(len(nodes), reasons))
            return
        target = max(fits, key=lambda f: (f[0], [-ord(c) for c in f[1]]))[1]
        # assume now, bind in the background (kube-scheduler's binding cycle): the next pod is
        # placed at once, counting this one on its node
        self.assumed[key] = (target, pod)
        self._count(key, target, pod)
        self.reported.pop(key, None)
        self._spawn(self._bind(key, pod, target))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, key: str, pod: Obj, target: str) -> None:
        namespace, _, name = key.partition("/")
        binding = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": pod["metadata"].get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": target},
        }  # fmt: skip
        async with self._binding:
            try:
                await self.client.create(PODS, binding, namespace=namespace, name=name, subresource="binding")
            except (KubeNotFound, Conflict):
                self._unassume(key, target)  # deleted, or bound by someone else: the watch tells the rest
                return
            except Exception as exc:
                self._unassume(key, target)
                if isinstance(exc, KedgeError):
                    log.warning("binding %s to %s failed: %s; retrying", key, target, exc)
                else:
                    self.health.failed(self.name, f"bind {key}", exc)
                self.queue.add_after(key, 1.0)
                return
        await self._event(pod, "Normal", "Scheduled", f"Successfully assigned {key} to {target}")

    async def _unschedulable(self, pod: Obj, message: str) -> None:
        key = _key(pod)
        if self.reported.get(key) == message:
            return
        cond = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": _now(),
        }
        meta = pod["metadata"]
        try:
            await self.client.patch(
                PODS,
                meta["name"],
                {"status": {"conditions": [cond]}},
                namespace=meta.get("namespace"),
                type="strategic",
                subresource="status",
            )
        except KubeNotFound:
            return
        self.reported[key] = message
        self._spawn(self._event(pod, "Warning", "FailedScheduling", message))

    async def _event(self, pod: Obj, typ: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        stamp = _now()
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace")},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": typ,
            "source": {"component": SCHEDULER_NAME},
            "reportingComponent": SCHEDULER_NAME,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.client.create(EVENTS, event, namespace=meta.get("namespace"))
        except Exception as exc:  # events are best effort, as in client-go's recorder
            log.debug("event for %s not recorded: %s", meta["name"], exc)
