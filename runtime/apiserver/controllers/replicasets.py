"""ReplicaSet and ReplicationController controller: keep `spec.replicas` active pods from the
template, and report status.

As kube-controller-manager's replicaset controller (its replicationcontroller controller is the same
code, the RC's plain label-map selector read as `matchLabels`; `Replicated` says which kind): pods
are the RS's when their controller ownerReference is the RS (orphans matching the selector are
adopted); creates use generateName `<rs>-`; surplus pods are deleted unscheduled first, then
pending, then not ready, then newest.
Pods created or deleted here enter the cache at once ("expectations"), so a burst of reconciles
never over-creates before the watch catches up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.apiserver.controllers.base import Informers, Obj, WorkQueue, as_int, run_all, run_worker
from runtime.apiserver.controllers.fit import is_terminal
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.errors import Conflict, KubeNotFound
from runtime.kube.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS, Res

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replicated:
    """The kind whose replicas one controller keeps: its name, API and how its selector reads."""

    controller: str
    res: Res
    selector: Callable[[Obj], Obj]  # the object's selector as a metav1.LabelSelector

    @property
    def kind(self) -> str:
        return self.res.kind


def _label_selector(obj: Obj) -> Obj:
    sel = (obj.get("spec") or {}).get("selector")
    return sel if isinstance(sel, dict) else {}


def _label_map(obj: Obj) -> Obj:
    sel = (obj.get("spec") or {}).get("selector")
    return {"matchLabels": sel} if isinstance(sel, dict) else {}


REPLICASET = Replicated("replicaset", REPLICASETS, _label_selector)
REPLICATIONCONTROLLER = Replicated("replicationcontroller", REPLICATIONCONTROLLERS, _label_map)


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector: matchLabels AND matchExpressions (an empty selector matches nothing here)."""
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return False
        key, op, vals = e.get("key", ""), e.get("operator", ""), e.get("values") or []
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def is_pod_ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def is_active(pod: Obj) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and not is_terminal(pod)


def controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("uid"))
    return None


def owner_ref(owner: Obj, kind: str, api_version: str) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _deletion_rank(pod: Obj) -> tuple[int, int, int, str]:
    """Lower goes first: unscheduled, pending, not ready, then the newest."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(str(status.get("phase") or "Pending"), 0)
    created = str(pod["metadata"].get("creationTimestamp") or "")
    inverse = "".join(chr(0x10FFFF - ord(c)) for c in created)  # newest first
    return (1 if spec.get("nodeName") else 0, phase_rank, 1 if is_pod_ready(pod) else 0, inverse)


class ReplicaSetController:
    """The replicaset controller, or with `kind=REPLICATIONCONTROLLER` the replicationcontroller one."""

    def __init__(
        self,
        informers: Informers,
        *,
        kind: Replicated = REPLICASET,
        burst: int = 500,
        health: ControllerHealth | None = None,
    ) -> None:
        self.client = informers.client
        self.kind = kind
        self.name = kind.controller
        self.health = health if health is not None else ControllerHealth()
        self.burst = burst
        self.queue = WorkQueue()
        self.sets = informers.get(kind.res, on_change=self.health.guard(self.name, self._rs_changed))
        self.pods = informers.get(PODS, on_change=self.health.guard(self.name, self._pod_changed))

    def _rs_changed(self, typ: str, rs: Obj, prev: Obj | None) -> None:
        if typ != "DELETED":
            self.queue.add(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}")

    def _pod_changed(self, typ: str, pod: Obj, prev: Obj | None) -> None:
        uid = controller_uid(pod)
        ns = pod["metadata"].get("namespace", "")
        for rs in self.sets.items():
            meta = rs["metadata"]
            if meta.get("namespace") != ns:
                continue
            if meta.get("uid") == uid or (
                uid is None and selector_matches(self.kind.selector(rs), pod["metadata"].get("labels") or {})
            ):
                self.queue.add(f"{ns}/{meta['name']}")

    async def run(self) -> None:
        async def worker() -> None:
            await self.sets.synced.wait()
            await self.pods.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        await run_all(self.name, self.sets.run(), self.pods.run(), worker())

    def _owned(self, rs: Obj) -> tuple[list[Obj], list[Obj]]:
        """(pods controlled by rs, orphans matching its selector) in its namespace."""
        meta, selector = rs["metadata"], self.kind.selector(rs)
        owned, orphans = [], []
        for pod in self.pods.items():
            if pod["metadata"].get("namespace") != meta["namespace"]:
                continue
            uid = controller_uid(pod)
            if uid == meta["uid"]:
                owned.append(pod)
            elif (
                uid is None
                and is_active(pod)
                and selector_matches(selector, pod["metadata"].get("labels") or {})
            ):
                orphans.append(pod)
        return owned, orphans

    async def reconcile(self, key: str) -> None:
        ns, _, name = key.partition("/")
        rs = self.sets.get(ns, name)
        if rs is None:
            return
        owned, orphans = self._owned(rs)
        if not rs["metadata"].get("deletionTimestamp"):
            for pod in orphans:
                owned.append(await self._adopt(rs, pod) or pod)
            await self._scale(rs, [p for p in owned if is_active(p)])
        await self._status(rs)

    def _owner_ref(self, owner: Obj) -> Obj:
        return owner_ref(owner, self.kind.kind, self.kind.res.api_version)

    async def _adopt(self, rs: Obj, pod: Obj) -> Obj | None:
        refs = [*(pod["metadata"].get("ownerReferences") or []), self._owner_ref(rs)]
        patch = {"metadata": {"ownerReferences": refs, "resourceVersion": pod["metadata"]["resourceVersion"]}}
        try:
            return await self.client.patch(
                PODS, pod["metadata"]["name"], patch, namespace=rs["metadata"]["namespace"]
            )
        except (KubeNotFound, Conflict):
            return None

    async def _scale(self, rs: Obj, active: list[Obj]) -> None:
        want = as_int((rs.get("spec") or {}).get("replicas"), 1)
        diff = len(active) - want
        ns = rs["metadata"]["namespace"]
        if diff < 0:
            template = (rs.get("spec") or {}).get("template") or {}
            tmeta = template.get("metadata") or {}
            body = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "generateName": f"{rs['metadata']['name']}-", "namespace": ns,
                    "labels": dict(tmeta.get("labels") or {}),
                    "annotations": dict(tmeta.get("annotations") or {}),
                    "ownerReferences": [self._owner_ref(rs)],
                },
                "spec": template.get("spec") or {},
            }  # fmt: skip
            # slow start (1, 2, 4 … in parallel), as the real controller: a template the server
            # refuses fails once, not `replicas` times
            left, batch = min(-diff, self.burst), 1
            while left > 0:
                n = min(batch, left)
                created = await asyncio.gather(
                    *(self.client.create(PODS, body, namespace=ns) for _ in range(n)), return_exceptions=True
                )
                for pod in created:
                    if isinstance(pod, dict):
                        self.pods.remember(pod)  # expectation
                errors = [e for e in created if isinstance(e, BaseException)]
                if errors:
                    raise errors[0]
                left -= n
                batch *= 2
        elif diff > 0:
            for pod in sorted(active, key=_deletion_rank)[:diff]:
                try:
                    await self.client.delete(
                        PODS, pod["metadata"]["name"], namespace=ns, uid=pod["metadata"]["uid"]
                    )
                except (KubeNotFound, Conflict):
                    pass
                pod["metadata"]["deletionTimestamp"] = pod["metadata"].get("deletionTimestamp") or "pending"

    async def _status(self, rs: Obj) -> None:
        owned, _ = self._owned(rs)
        active = [p for p in owned if is_active(p)]
        labels = (((rs.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        ready = [p for p in active if is_pod_ready(p)]
        status: dict[str, Any] = {
            "replicas": len(active),
            "fullyLabeledReplicas": sum(
                1
                for p in active
                if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items())
            ),
            "readyReplicas": len(ready),
            "availableReplicas": len(ready),
            "observedGeneration": as_int(rs["metadata"].get("generation"), 1),
        }
        old = rs.get("status") or {}
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        await self.sets.write_status(rs, status)
