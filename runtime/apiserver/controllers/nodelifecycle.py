"""Node lifecycle: node health from Leases and Ready heartbeats, the condition taints, NoExecute eviction.

As kube-controller-manager's node lifecycle controller (and its taint-eviction controller):
- a node is healthy while its Lease (kube-node-lease/<node>) renewTime or its Ready condition's
  lastHeartbeatTime keeps changing; changes are timed on *this* clock, as the real controller does,
  so skewed node clocks do not matter. After `grace` (40 s) without one, Ready, MemoryPressure,
  DiskPressure and PIDPressure become Unknown ("Kubelet stopped posting node status.");
- Ready=Unknown ⇒ taints `node.kubernetes.io/unreachable` NoSchedule+NoExecute, Ready=False ⇒
  `node.kubernetes.io/not-ready` NoSchedule+NoExecute; Ready=True clears them;
- a pod on a node with NoExecute taints it does not tolerate is deleted at once; one tolerating them
  for `tolerationSeconds` (300 s by default from admission) is deleted that long after the taint's
  timeAdded; one tolerating them without a limit stays.
This is the behaviour kedge's autonomy window has to hold off, so timings are parameters (tests run
in seconds) but the rules are Kubernetes'.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from typing import Any

from runtime.apiserver.controllers.base import Informers, Obj, WorkQueue, run_all, run_worker
from runtime.apiserver.controllers.fit import is_terminal, tolerates
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.errors import Conflict, KubeNotFound
from runtime.kube.resources import LEASES, NODES, PODS

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
log = logging.getLogger(__name__)


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return (
            datetime.datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC).timestamp()
        )
    except (TypeError, ValueError):
        return None


def ready_status(node: Obj) -> str:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status") or "Unknown")
    return "Unknown"


def desired_condition_taints(node: Obj) -> set[tuple[str, str]]:
    conds = (node.get("status") or {}).get("conditions") or []
    if not any(c.get("type") == "Ready" for c in conds):
        return set()  # never reported: left alone until the grace period marks it Unknown
    ready = ready_status(node)
    key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(ready)
    return {(key, "NoSchedule"), (key, "NoExecute")} if key else set()


def eviction_delay(pod: Obj, taints: list[Obj], now: float) -> float | None:
    """Seconds until the pod must go (0: now), or None if it tolerates every NoExecute taint forever."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    due: float | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates([t], taint)]
        if not matching:
            return 0.0
        limits = [t["tolerationSeconds"] for t in matching if t.get("tolerationSeconds") is not None]
        if not limits or len(limits) < len(matching):
            continue  # one toleration without a limit: tolerated forever
        added = _parse(taint.get("timeAdded")) or now
        left = max(0.0, added + max(0, min(int(x) for x in limits)) - now)
        due = left if due is None else min(due, left)
    return due


class NodeLifecycle:
    name = "node-lifecycle"

    def __init__(
        self,
        informers: Informers,
        *,
        grace: float = 40.0,
        period: float = 5.0,
        health: ControllerHealth | None = None,
    ) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.grace, self.period = grace, period
        self.queue = WorkQueue()
        self.seen: dict[str, tuple[Any, float]] = {}  # node -> (heartbeat signature, local time seen)
        self.nodes = informers.get(NODES, on_change=self.health.guard(self.name, self._node_changed))
        # all namespaces, so the garbage collector's lease watch is this same one
        self.leases = informers.get(LEASES, on_change=self.health.guard(self.name, self._lease_changed))
        self.pods = informers.get(PODS, on_change=self.health.guard(self.name, self._pod_changed))

    def _node_changed(self, typ: str, node: Obj, prev: Obj | None) -> None:
        name = node["metadata"]["name"]
        if typ == "DELETED":
            self.seen.pop(name, None)
            return
        self._observe(name)
        self.queue.add(name)

    def _lease_changed(self, typ: str, lease: Obj, prev: Obj | None) -> None:
        if lease["metadata"].get("namespace") == "kube-node-lease":
            self._observe(lease["metadata"]["name"])

    def _pod_changed(self, typ: str, pod: Obj, prev: Obj | None) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and typ != "DELETED" and self.nodes.get("", node) is not None:
            taints = ((self.nodes.get("", node) or {}).get("spec") or {}).get("taints") or []
            if any(t.get("effect") == "NoExecute" for t in taints):
                self.queue.add(node)

    def _signature(self, name: str) -> Any:
        node = self.nodes.get("", name) or {}
        beat = next(
            (
                c.get("lastHeartbeatTime")
                for c in (node.get("status") or {}).get("conditions") or []
                if c.get("type") == "Ready"
            ),
            None,
        )
        lease = self.leases.get("kube-node-lease", name) or {}
        return (beat, (lease.get("spec") or {}).get("renewTime"))

    def _observe(self, name: str) -> None:
        sig = self._signature(name)
        if name not in self.seen or self.seen[name][0] != sig:
            self.seen[name] = (sig, time.monotonic())

    async def run(self) -> None:
        async def worker() -> None:
            for inf in (self.nodes, self.leases, self.pods):
                await inf.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        async def monitor() -> None:
            for inf in (self.nodes, self.leases):
                await inf.synced.wait()
            now = time.monotonic()
            for name in list(self.seen):  # on start every node gets a full grace period
                self.seen[name] = (self.seen[name][0], now)
            while True:
                await asyncio.sleep(self.period)
                for node in self.nodes.items():
                    name = node["metadata"]["name"]
                    try:
                        self._observe(name)
                        if (
                            time.monotonic() - self.seen[name][1] > self.grace
                            and ready_status(node) != "Unknown"
                        ):
                            self.queue.add(name)
                    except Exception as exc:  # one node it cannot read must not stop the monitor
                        self.health.failed(self.name, f"monitor {name}", exc)
                    else:
                        self.health.succeeded(self.name, f"monitor {name}")

        await run_all(self.name, self.nodes.run(), self.leases.run(), self.pods.run(), worker(), monitor())

    async def reconcile(self, name: str) -> None:
        node = self.nodes.get("", name)
        if node is None:
            return
        if (
            name in self.seen
            and time.monotonic() - self.seen[name][1] > self.grace
            and ready_status(node) != "Unknown"
        ):
            node = await self._mark_unknown(node)
        node = await self._sync_taints(node)
        await self._evict(node)

    async def _mark_unknown(self, node: Obj) -> Obj:
        now = _now_rfc3339()
        conds = []
        for c in (node.get("status") or {}).get("conditions") or []:
            if c.get("type") in CONDITIONS and c.get("status") != "Unknown":
                conds.append(
                    {
                        "type": c["type"],
                        "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.",
                        "lastHeartbeatTime": c.get("lastHeartbeatTime"),
                        "lastTransitionTime": now,
                    }
                )
        if not conds:
            conds.append(
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastTransitionTime": now,
                }
            )
        log.info("node %s: no heartbeat for %.0fs, marking Unknown", node["metadata"]["name"], self.grace)
        out = await self.client.patch(
            NODES,
            node["metadata"]["name"],
            {"status": {"conditions": conds}},
            subresource="status",
            type="strategic",
        )
        return out  # not written into the shared cache: other controllers diff against it

    async def _sync_taints(self, node: Obj) -> Obj:
        taints: list[Obj] = list((node.get("spec") or {}).get("taints") or [])
        want = desired_condition_taints(node)
        ours = {UNREACHABLE, NOT_READY}
        have = {(t.get("key"), t.get("effect")) for t in taints if t.get("key") in ours}
        if have == want:
            return node
        kept = [t for t in taints if t.get("key") not in ours or (t.get("key"), t.get("effect")) in want]
        now = _now_rfc3339()
        for key, effect in sorted(want - have):
            taint: Obj = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = now
            kept.append(taint)
        patch = {
            "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
            "spec": {"taints": kept},
        }
        try:
            out = await self.client.patch(NODES, node["metadata"]["name"], patch)
        except Conflict:
            self.queue.add(node["metadata"]["name"])  # the cache catches up, then we go again
            return node
        return out  # not written into the shared cache: other controllers diff against it

    async def _evict(self, node: Obj) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        name, now = node["metadata"]["name"], time.time()
        next_due: float | None = None
        for pod in self.pods.items():
            meta = pod["metadata"]
            if (
                (pod.get("spec") or {}).get("nodeName") != name
                or meta.get("deletionTimestamp")
                or is_terminal(pod)
            ):
                continue
            delay = eviction_delay(pod, taints, now)
            if delay is None:
                continue
            if delay > 0:
                next_due = delay if next_due is None else min(next_due, delay)
                continue
            log.info(
                "node %s: evicting pod %s/%s (NoExecute taint)", name, meta.get("namespace"), meta["name"]
            )
            try:
                await self.client.delete(
                    PODS, meta["name"], namespace=meta.get("namespace"), uid=meta.get("uid")
                )
            except (KubeNotFound, Conflict):
                pass
        if next_due is not None:
            self.queue.add_after(name, next_due + 0.05)
