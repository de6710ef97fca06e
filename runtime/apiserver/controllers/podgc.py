"""Pod garbage collection, as kube-controller-manager's podgc controller:

- a pod bound to a node that does not exist (the Node object was deleted) is force-deleted (grace 0)
  and, first, marked `DisruptionTarget=True, DeletionByPodGC` like the real controller;
- a terminating pod on a node that is gone the same;
- terminated pods (Succeeded/Failed) beyond `terminated_threshold` (12,500 by default) are deleted,
  oldest first.
Orphans are only collected after the node has been absent for `quarantine` seconds (the real
controller waits 40 s), so a node being re-registered does not lose its pods.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time

from runtime.apiserver.controllers.base import Informers, Obj, run_all
from runtime.apiserver.controllers.fit import is_terminal
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.errors import Conflict, KubeNotFound
from runtime.kube.resources import NODES, PODS

log = logging.getLogger(__name__)


class PodGC:
    name = "pod-garbage-collector"

    def __init__(
        self,
        informers: Informers,
        *,
        period: float = 20.0,
        quarantine: float = 40.0,
        terminated_threshold: int = 12500,
        health: ControllerHealth | None = None,
    ) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.period, self.quarantine, self.threshold = period, quarantine, terminated_threshold
        self.pods = informers.get(PODS)
        self.nodes = informers.get(NODES)
        self.missing_since: dict[str, float] = {}

    async def run(self) -> None:
        async def loop() -> None:
            await self.pods.synced.wait()
            await self.nodes.synced.wait()
            self.health.register(self.name)
            while True:
                try:
                    await self.collect()
                    self.health.succeeded(self.name, "collect")
                except Exception as exc:  # one pod it cannot handle must not stop collection
                    self.health.failed(self.name, "collect", exc)
                await asyncio.sleep(self.period)

        await run_all(self.name, self.pods.run(), self.nodes.run(), loop())

    async def collect(self) -> None:
        await self._orphans()
        await self._terminated()

    async def _orphans(self) -> None:
        now = time.monotonic()
        bound = {str((p.get("spec") or {}).get("nodeName") or "") for p in self.pods.items()} - {""}
        for name in list(self.missing_since):
            if name not in bound or self.nodes.get("", name) is not None:
                del self.missing_since[name]
        for name in bound:
            if self.nodes.get("", name) is None:
                self.missing_since.setdefault(name, now)
        gone = {n for n, t in self.missing_since.items() if now - t >= self.quarantine}
        for pod in self.pods.items():
            if (pod.get("spec") or {}).get("nodeName") in gone:
                await self._force_delete(pod, "PodGC: node no longer exists")

    async def _terminated(self) -> None:
        done = [p for p in self.pods.items() if is_terminal(p) and not p["metadata"].get("deletionTimestamp")]
        extra = len(done) - self.threshold
        if extra <= 0:
            return
        done.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
        for pod in done[:extra]:
            await self._force_delete(pod, None)

    async def _force_delete(self, pod: Obj, message: str | None) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        try:
            if message is not None and not is_terminal(pod):
                now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                cond = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC"}
                cond |= {"message": message, "lastTransitionTime": now}
                await self.client.patch(
                    PODS, name, {"status": {"conditions": [cond]}}, namespace=ns, subresource="status",
                    type="strategic",
                )  # fmt: skip
            await self.client.delete(PODS, name, namespace=ns, grace_period=0, uid=meta.get("uid"))
            log.info("podgc: deleted %s/%s%s", ns, name, f" ({message})" if message else " (terminated)")
        except (KubeNotFound, Conflict):
            pass
        self.pods.store.pop((ns or "", name), None)
