"""Garbage collector: ownerReferences with background, foreground and orphan propagation.

kube-controller-manager's garbagecollector, on the same rules:
- a dependent whose owners are all gone (no object with that name *and uid*) is deleted; one that
  still has a live owner only loses its dangling references;
- an owner deleted with `propagationPolicy=Foreground` (finalizer `foregroundDeletion`) has its
  dependents deleted (in foreground too) and keeps its finalizer until no dependent with
  `blockOwnerDeletion: true` remains;
- an owner deleted with `Orphan` (finalizer `orphan`) has its reference removed from every
  dependent, then the finalizer.
Every resource the server serves is watched (rediscovered periodically, so CRDs join), an owner's
absence is confirmed by a live GET before anything is deleted, and deletes carry a UID precondition.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from runtime.apiserver.controllers.base import (
    Informer,
    Informers,
    Obj,
    OnChange,
    WorkQueue,
    run_all,
    run_worker,
)
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.errors import Conflict, KubeNotFound
from runtime.kube.resources import Res

log = logging.getLogger(__name__)
VERBS = ("list", "watch", "get", "delete", "patch")
Ref = tuple[str, str, str]  # resource id, namespace, name


def _rid(res: Res) -> str:
    return f"{res.api_version}/{res.plural}"


class GarbageCollector:
    name = "garbage-collector"

    def __init__(
        self, informers: Informers, *, rediscover: float = 10.0, health: ControllerHealth | None = None
    ) -> None:
        self.client = informers.client
        self.shared = informers
        self.health = health if health is not None else ControllerHealth()
        self.rediscover = rediscover
        self.queue = WorkQueue()
        self.informers: dict[str, Informer] = {}
        self.resources: dict[str, Res] = {}
        self.dependents: dict[str, set[Ref]] = {}  # owner uid -> dependents
        self.by_uid: dict[str, Ref] = {}
        self.watch_tasks: dict[str, asyncio.Future[None]] = {}
        self.handlers: dict[str, OnChange] = {}
        self.discovered = asyncio.Event()

    # -- graph ------------------------------------------------------------------------------------

    def _watch(self, res: Res) -> None:
        rid = _rid(res)
        self.resources[rid] = res

        def changed(typ: str, obj: Obj, prev: Obj | None) -> None:
            self._changed(rid, typ, obj, prev)

        inf = self.shared.get(res, on_change=self.health.guard(self.name, changed))
        self.informers[rid] = inf
        self.handlers[rid] = changed
        self.watch_tasks[rid] = asyncio.ensure_future(inf.run())

    def _changed(self, rid: str, typ: str, obj: Obj, prev: Obj | None) -> None:
        meta = obj.get("metadata") or {}
        ref: Ref = (rid, meta.get("namespace") or "", meta.get("name") or "")
        for old in (prev or {}).get("metadata", {}).get("ownerReferences") or []:
            deps = self.dependents.get(old.get("uid", ""))
            if deps is not None:
                deps.discard(ref)
                if not deps:
                    del self.dependents[old.get("uid", "")]
        uid = meta.get("uid", "")
        if typ == "DELETED":
            self.by_uid.pop(uid, None)
        else:
            self.by_uid[uid] = ref
            for owner in meta.get("ownerReferences") or []:
                self.dependents.setdefault(owner.get("uid", ""), set()).add(ref)
            if meta.get("ownerReferences"):
                self.queue.add(f"dep|{rid}|{ref[1]}|{ref[2]}")
            if meta.get("deletionTimestamp") and {"orphan", "foregroundDeletion"} & set(
                meta.get("finalizers") or []
            ):
                self.queue.add(f"own|{rid}|{ref[1]}|{ref[2]}")
        for dep in self.dependents.get(uid, set()).copy():
            self.queue.add(f"dep|{dep[0]}|{dep[1]}|{dep[2]}")
        if typ == "DELETED":
            for owner in meta.get("ownerReferences") or []:  # a blocking dependent went: owner may finish
                found = self.by_uid.get(owner.get("uid", ""))
                if found is not None:
                    self.queue.add(f"own|{found[0]}|{found[1]}|{found[2]}")

    async def _discover_forever(self) -> None:
        while True:
            try:
                for res in await self.client.discover(verbs=VERBS):
                    if _rid(res) not in self.informers:
                        self._watch(res)
                self.discovered.set()
            except Exception as exc:  # discovery failing must not stop collection of known kinds
                log.debug("gc discovery: %s", exc)
            self._drop_failed()
            await asyncio.sleep(self.rediscover)

    def _drop_failed(self) -> None:
        """A kind whose watch failed for good (its CRD was deleted, or it cannot be listed) is
        forgotten — rediscovery re-adds it if it is served again — instead of stopping the GC."""
        for rid, task in list(self.watch_tasks.items()):
            if not task.done():
                continue
            del self.watch_tasks[rid]
            inf = self.informers.pop(rid, None)
            handler = self.handlers.pop(rid, None)
            if inf is not None and handler in inf.on_change:
                inf.on_change.remove(handler)
            if not task.cancelled() and task.exception() is not None:
                log.info("gc: no longer watching %s: %s", rid, task.exception())

    async def run(self) -> None:
        async def worker() -> None:
            await self.discovered.wait()
            for inf in list(self.informers.values()):
                await inf.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        try:
            await run_all(self.name, self._discover_forever(), worker())
        finally:
            for t in self.watch_tasks.values():
                t.cancel()
            await asyncio.gather(*self.watch_tasks.values(), return_exceptions=True)

    # -- reconcile --------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> None:
        kind, rid, ns, name = key.split("|", 3)
        res = self.resources[rid]
        obj = self.informers[rid].get(ns, name)  # the cache; owners are what gets checked live
        if obj is None:
            return
        if kind == "dep":
            await self._dependent(res, obj)
        else:
            await self._owner(res, obj)

    async def _owner_state(self, dependent: Obj, ref: dict[str, Any]) -> str:
        """ "absent" | "waiting" (foreground-deleting) | "solid"; anything but a healthy cached owner
        is confirmed with a live GET (by name and uid) before the caller acts on it."""
        cached = self.by_uid.get(ref.get("uid", ""))
        if cached is not None and cached[2] == ref.get("name"):
            inf = self.informers.get(cached[0])
            obj = inf.get(cached[1], cached[2]) if inf else None
            if obj is not None and not obj["metadata"].get("deletionTimestamp"):
                return "solid"
        try:
            res = await self.client.resolve(ref["apiVersion"], ref["kind"])
        except KubeNotFound:
            return "absent"  # the owner's kind is not served at all
        ns = (dependent["metadata"].get("namespace") or None) if res.namespaced else None
        try:
            owner = await self.client.get(res, ref["name"], namespace=ns)
        except KubeNotFound:
            return "absent"
        meta = owner.get("metadata") or {}
        if meta.get("uid") != ref.get("uid"):
            return "absent"
        if meta.get("deletionTimestamp") and "foregroundDeletion" in (meta.get("finalizers") or []):
            return "waiting"
        return "solid"

    async def _dependent(self, res: Res, obj: Obj) -> None:
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        if not refs:
            return
        states = [await self._owner_state(obj, r) for r in refs]
        ns = meta.get("namespace")
        if "solid" in states:
            if "absent" in states:
                keep = [r for r, s in zip(refs, states, strict=True) if s != "absent"]
                patch = {"metadata": {"ownerReferences": keep, "resourceVersion": meta["resourceVersion"]}}
                try:
                    await self.client.patch(res, meta["name"], patch, namespace=ns)
                except KubeNotFound:
                    pass
            return
        if meta.get("deletionTimestamp"):
            return
        try:
            await self.client.delete(
                res,
                meta["name"],
                namespace=ns,
                uid=meta.get("uid"),
                propagation="Foreground" if "waiting" in states else "Background",
            )
            log.info("gc: deleted %s %s/%s (owners gone)", res.kind, ns or "", meta["name"])
        except (KubeNotFound, Conflict):
            pass

    def _dependents_of(self, uid: str) -> list[tuple[Res, Obj]]:
        out = []
        for rid, ns, name in self.dependents.get(uid, set()).copy():
            inf = self.informers.get(rid)
            obj = inf.get(ns, name) if inf else None
            if obj is not None:
                out.append((self.resources[rid], obj))
        return out

    async def _owner(self, res: Res, owner: Obj) -> None:
        meta = owner["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if not meta.get("deletionTimestamp"):
            return
        uid = meta.get("uid", "")
        if "orphan" in finalizers:
            for dres, dep in self._dependents_of(uid):
                dmeta = dep["metadata"]
                keep = [r for r in dmeta.get("ownerReferences") or [] if r.get("uid") != uid]
                patch = {"metadata": {"ownerReferences": keep, "resourceVersion": dmeta["resourceVersion"]}}
                try:
                    await self.client.patch(dres, dmeta["name"], patch, namespace=dmeta.get("namespace"))
                except KubeNotFound:
                    pass
            await self._drop_finalizer(res, owner, "orphan")
        elif "foregroundDeletion" in finalizers:
            blocking = 0
            for dres, dep in self._dependents_of(uid):
                dmeta = dep["metadata"]
                ref: dict[str, Any] = next(
                    (r for r in dmeta.get("ownerReferences") or [] if r.get("uid") == uid), {}
                )
                if ref.get("blockOwnerDeletion"):
                    blocking += 1
                if not dmeta.get("deletionTimestamp"):
                    try:
                        await self.client.delete(
                            dres,
                            dmeta["name"],
                            namespace=dmeta.get("namespace"),
                            uid=dmeta.get("uid"),
                            propagation="Foreground",
                        )
                    except (KubeNotFound, Conflict):
                        pass
            if blocking == 0:
                await self._drop_finalizer(res, owner, "foregroundDeletion")

    async def _drop_finalizer(self, res: Res, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        rest = [f for f in meta.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": rest, "resourceVersion": meta["resourceVersion"]}}
        try:
            await self.client.patch(res, meta["name"], patch, namespace=meta.get("namespace"))
        except KubeNotFound:
            pass
