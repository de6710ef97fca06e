"""Namespace lifecycle: a deleted namespace's contents are deleted, then its `kubernetes` finalizer goes.

kube-controller-manager's namespace controller, reduced to what one machine needs: when a namespace
has a deletionTimestamp (the server marked it Terminating and refuses new objects in it), delete
every namespaced resource in it — every kind the server serves, CRDs included, found by discovery —
wait until nothing is left (finalizers and graceful pod deletion may take a moment), then PUT
`namespaces/<name>/finalize` without `kubernetes`, after which the server removes the namespace.

With the embedded server, `claim(api)` tells it that this controller owns the Terminating phase
(otherwise the server purges the namespace itself, as a stand-in).
"""

from __future__ import annotations

import logging
from typing import Any

from runtime.apiserver.controllers.base import Informers, Obj, WorkQueue, run_all, run_worker
from runtime.apiserver.controllers.health import ControllerHealth
from runtime.kube.errors import ApiError, Forbidden, KubeConflict, KubeNotFound
from runtime.kube.resources import NAMESPACES, Res

FINALIZER = "kubernetes"
log = logging.getLogger(__name__)


def claim(api: Any) -> None:
    """Make an in-process embedded server only mark deleted namespaces (this controller empties them)."""

    async def mark_only(name: str) -> None:
        return None

    api.namespace_finalizer = mark_only


class NamespaceLifecycle:
    name = "namespace"

    def __init__(
        self, informers: Informers, *, recheck: float = 0.5, health: ControllerHealth | None = None
    ) -> None:
        self.client = informers.client
        self.health = health if health is not None else ControllerHealth()
        self.recheck = recheck
        self.queue = WorkQueue()
        self.namespaces = informers.get(NAMESPACES, on_change=self.health.guard(self.name, self._changed))

    def _changed(self, typ: str, ns: Obj, prev: Obj | None) -> None:
        if typ != "DELETED" and (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def run(self) -> None:
        async def worker() -> None:
            await self.namespaces.synced.wait()
            await run_worker(self.name, self.queue, self.reconcile, self.health)

        await run_all(self.name, self.namespaces.run(), worker())

    async def reconcile(self, name: str) -> None:
        ns = self.namespaces.get("", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining = await self._delete_contents(name)
        if remaining:
            log.debug("namespace %s: %d objects still terminating", name, remaining)
            self.queue.add_after(name, self.recheck)
            return
        fresh = await self.client.get(NAMESPACES, name)
        fins = [f for f in (fresh.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        body = {**fresh, "spec": {**(fresh.get("spec") or {}), "finalizers": fins}}
        try:
            await self.client.replace(NAMESPACES, body, subresource="finalize")
        except KubeNotFound:
            return
        except KubeConflict:
            self.queue.add(name)  # changed meanwhile: go again on the fresh copy

    async def _delete_contents(self, namespace: str) -> int:
        """Delete what is left; returns how many objects still exist (terminating ones included)."""
        remaining = 0
        for res in await self._namespaced():
            try:
                items = (await self.client.list(res, namespace=namespace)).items
            except (KubeNotFound, Forbidden):
                continue  # not listable (or gone): nothing we can delete
            if not items:
                continue
            if any(not (o.get("metadata") or {}).get("deletionTimestamp") for o in items):
                try:
                    await self.client.delete_collection(res, namespace=namespace, propagation="Background")
                except (KubeNotFound, Forbidden):
                    continue
                except ApiError as exc:
                    if exc.code != 405:  # MethodNotAllowed: no deletecollection, delete one by one
                        raise
                    for obj in items:
                        try:
                            await self.client.delete(res, obj["metadata"]["name"], namespace=namespace)
                        except KubeNotFound:
                            pass
                items = (await self.client.list(res, namespace=namespace)).items
            remaining += len(items)
        return remaining

    async def _namespaced(self) -> list[Res]:
        return [r for r in await self.client.discover(verbs=("list", "delete")) if r.namespaced]
