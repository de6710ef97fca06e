"""Deployment controller: Deployments → ReplicaSets (create, scale, rolling update, Recreate, status).

The parts of kube-controller-manager's deployment controller that `kubectl create deployment`,
`kubectl scale`, `kubectl set image` and `kubectl rollout status` rely on: one ReplicaSet per pod
template, named `<deployment>-<pod-template-hash>` and labelled with that hash; the revision
annotations; RollingUpdate honouring maxSurge/maxUnavailable (percentages resolved as Kubernetes
does: surge rounds up, unavailable down, never both zero); Recreate; status counters, the
Available/Progressing conditions and observedGeneration; old ReplicaSets beyond
revisionHistoryLimit removed.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
from typing import Any

from runtime.apiserver.controllers.base import (
    Informers,
    Obj,
    WorkQueue,
    as_int,
    run_all,
    run_worker,
    set_condition,
)
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.apiserver.controllers.replicasets import controller_uid, owner_ref
from runtime.kube.errors import AlreadyExists, KubeNotFound
from runtime.kube.resources import DEPLOYMENTS, REPLICASETS

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collisions: int = 0) -> str:
    """A short, stable hash of the pod template in Kubernetes' alphabet (no vowels)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode() + str(collisions).encode()
    n = _fnv32a(data)
    return "".join(_SAFE[int(d) % len(_SAFE)] for d in str(n))[:10]


def _strip_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def resolve(value: Any, total: int, round_up: bool) -> int:
    """An intOrString maxSurge/maxUnavailable (unset: 25%); an unreadable one counts as the default."""
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        exact = as_int(value[:-1], 25) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return max(0, as_int(value, 0))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cond(typ: str, status: str, reason: str, message: str) -> Obj:
    now = _now()
    return {
        "type": typ,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


class DeploymentController:
    name = "deployment"

    def __init__(self, informers: Informers, *, health: ControllerHealth | None = None) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.queue = WorkQueue()
        self.deployments = informers.get(DEPLOYMENTS, on_change=self.health.guard(self.name, self._changed))
        self.sets = informers.get(REPLICASETS, on_change=self.health.guard(self.name, self._rs_changed))

    def _changed(self, typ: str, d: Obj, prev: Obj | None) -> None:
        if typ != "DELETED":
            self.queue.add(f"{d['metadata']['namespace']}/{d['metadata']['name']}")

    def _rs_changed(self, typ: str, rs: Obj, prev: Obj | None) -> None:
        uid = controller_uid(rs)
        for d in self.deployments.items():
            if d["metadata"].get("uid") == uid:
                self.queue.add(f"{d['metadata']['namespace']}/{d['metadata']['name']}")

    async def run(self) -> None:
        async def worker() -> None:
            await self.deployments.synced.wait()
            await self.sets.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        await run_all(self.name, self.deployments.run(), self.sets.run(), worker())

    def _sets_of(self, d: Obj) -> list[Obj]:
        uid, ns = d["metadata"]["uid"], d["metadata"]["namespace"]
        return [
            rs
            for rs in self.sets.items()
            if rs["metadata"].get("namespace") == ns and controller_uid(rs) == uid
        ]

    async def reconcile(self, key: str) -> None:
        ns, _, name = key.partition("/")
        d = self.deployments.get(ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        sets = self._sets_of(d)
        template = spec.get("template") or {}
        new = next(
            (rs for rs in sets if _strip_hash((rs.get("spec") or {}).get("template") or {}) == template), None
        )
        olds = [rs for rs in sets if rs is not new]
        replicas = as_int(spec.get("replicas"), 1)
        if spec.get("paused"):
            await self._status(d, new, olds)
            return
        if new is None:
            new = await self._create_rs(d, olds)
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            await self._recreate(new, olds, replicas)
        else:
            ru = strategy.get("rollingUpdate") or {}
            surge = resolve(ru.get("maxSurge"), replicas, True)
            unavailable = resolve(ru.get("maxUnavailable"), replicas, False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            await self._rolling(new, olds, replicas, surge, unavailable)
        await self._cleanup(d, olds)
        await self._status(d, new, olds)

    def _revision(self, olds: list[Obj]) -> str:
        revs = [_revision_of(rs) for rs in olds]
        return str(max(revs, default=0) + 1)

    async def _create_rs(self, d: Obj, olds: list[Obj]) -> Obj:
        meta, spec = d["metadata"], d.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        h = template_hash(template, as_int((d.get("status") or {}).get("collisionCount")))
        tmeta = template["metadata"] = template.get("metadata") or {}
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = copy.deepcopy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        replicas = as_int(spec.get("replicas"), 1)
        first = not any(_spec_replicas(rs) for rs in olds)
        strategy = spec.get("strategy") or {}
        surge = resolve((strategy.get("rollingUpdate") or {}).get("maxSurge"), replicas, True)
        start = replicas if first and strategy.get("type") != "Recreate" else 0
        body: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{h}",
                "namespace": meta["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: self._revision(olds),
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                },
                "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")],
            },
            "spec": {
                "replicas": start,
                "minReadySeconds": as_int(spec.get("minReadySeconds")),
                "selector": selector,
                "template": template,
            },
        }
        try:
            rs = await self.client.create(REPLICASETS, body, namespace=meta["namespace"])
        except AlreadyExists:
            rs = await self.client.get(REPLICASETS, body["metadata"]["name"], namespace=meta["namespace"])
        self.sets.remember(rs)
        await self._annotate(d, rs["metadata"]["annotations"][REVISION])
        return rs

    async def _annotate(self, d: Obj, revision: str) -> None:
        if (d["metadata"].get("annotations") or {}).get(REVISION) == revision:
            return
        patch = {"metadata": {"annotations": {REVISION: revision}}}
        updated = await self.client.patch(
            DEPLOYMENTS, d["metadata"]["name"], patch, namespace=d["metadata"]["namespace"]
        )
        self.deployments.remember(updated)

    async def _set_replicas(self, rs: Obj, n: int) -> None:
        if _spec_replicas(rs) == n:
            return
        meta = rs["metadata"]
        updated = await self.client.patch(
            REPLICASETS, meta["name"], {"spec": {"replicas": n}}, namespace=meta["namespace"]
        )
        self.sets.remember(updated)
        rs.update(updated)

    async def _recreate(self, new: Obj, olds: list[Obj], replicas: int) -> None:
        for rs in olds:
            await self._set_replicas(rs, 0)
        if all(_status_count(rs, "replicas") == 0 for rs in olds):
            await self._set_replicas(new, replicas)

    async def _rolling(self, new: Obj, olds: list[Obj], replicas: int, surge: int, unavailable: int) -> None:
        spec_n = _spec_replicas

        def avail(rs: Obj) -> int:
            return _status_count(rs, "availableReplicas")

        # scale up the new ReplicaSet within replicas + maxSurge
        total = spec_n(new) + sum(spec_n(rs) for rs in olds)
        if spec_n(new) < replicas:
            room = replicas + surge - total
            if room > 0:
                await self._set_replicas(new, min(replicas, spec_n(new) + room))
        elif spec_n(new) > replicas:
            await self._set_replicas(new, replicas)
        # scale down old ReplicaSets while keeping replicas - maxUnavailable available
        min_available = replicas - unavailable
        all_available = avail(new) + sum(avail(rs) for rs in olds)
        budget = all_available - min_available
        for rs in sorted(olds, key=lambda r: str(r["metadata"].get("creationTimestamp") or "")):
            unhealthy = max(0, spec_n(rs) - avail(rs))  # not-available pods cost no availability
            target = spec_n(rs) - unhealthy
            down = min(target, max(0, budget))
            budget -= down
            if spec_n(rs) != target - down:
                await self._set_replicas(rs, target - down)

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        limit = as_int((d.get("spec") or {}).get("revisionHistoryLimit"), 10)
        idle = [rs for rs in olds if _spec_replicas(rs) == 0 and _status_count(rs, "replicas") == 0]
        idle.sort(key=_revision_of)
        for rs in idle[: max(0, len(idle) - limit)]:
            try:
                await self.client.delete(
                    REPLICASETS, rs["metadata"]["name"], namespace=rs["metadata"]["namespace"]
                )
            except KubeNotFound:
                pass

    async def _status(self, d: Obj, new: Obj | None, olds: list[Obj]) -> None:
        spec = d.get("spec") or {}
        replicas = as_int(spec.get("replicas"), 1)
        sets = [rs for rs in [new, *olds] if rs is not None]

        def total(field: str, among: list[Obj]) -> int:
            return sum(_status_count(rs, field) for rs in among)

        available = total("availableReplicas", sets)
        updated = total("replicas", [new]) if new is not None else 0
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = (
            0
            if (spec.get("strategy") or {}).get("type") == "Recreate"
            else resolve(ru.get("maxUnavailable"), replicas, False)
        )
        old = d.get("status") or {}
        available_ok = available >= replicas - max_unavailable
        complete = (
            new is not None
            and updated == replicas
            and total("replicas", sets) == replicas
            and total("availableReplicas", [new]) == replicas
        )
        name = new["metadata"]["name"] if new is not None else ""
        if complete:
            progress = ("NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.')
        else:
            progress = ("ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        if available_ok:
            avail = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            avail = ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
        # only the two types this controller owns change; any other condition stays as written
        conditions = set_condition(old.get("conditions"), _cond("Available", *avail))
        conditions = set_condition(conditions, _cond("Progressing", "True", *progress))
        status: dict[str, Any] = {
            "observedGeneration": as_int(d["metadata"].get("generation"), 1),
            "replicas": total("replicas", sets),
            "updatedReplicas": updated,
            "readyReplicas": total("readyReplicas", sets),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total("replicas", sets) - available),
        }
        if all(old.get(k, 0) == v for k, v in status.items()) and conditions == old.get("conditions"):
            return
        status["conditions"] = conditions
        await self.deployments.write_status(d, status)


def _spec_replicas(rs: Obj) -> int:
    return as_int((rs.get("spec") or {}).get("replicas"))


def _status_count(rs: Obj, field: str) -> int:
    return as_int((rs.get("status") or {}).get(field))


def _revision_of(rs: Obj) -> int:
    return as_int((rs["metadata"].get("annotations") or {}).get(REVISION))
