"""What every controller here is built from: an informer (a watched, always-current cache) and a
deduplicating work queue with per-key retry backoff — client-go's shape, on runtime.kube.

Why a cache and a queue: controllers react to many events about the same object (a pod gets several
status updates a second); reconciling by key from the cache collapses them into one pass over the
latest state, and a failing key is retried with backoff without blocking the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.apiserver.controllers.health import ControllerHealth, describe
from runtime.backoff import backoff
from runtime.errors import Conflict, KedgeError
from runtime.kube.client import KubeClient
from runtime.kube.resources import Res
from runtime.kube.retry import is_retryable
from runtime.kube.watch import watch_with_resume
from runtime.kube.wire import Selector, selector

Obj = dict[str, Any]
OnChange = Callable[[str, Obj, "Obj | None"], None]  # (event type, object, previous or None)
log = logging.getLogger(__name__)


def as_int(value: Any, default: int = 0) -> int:
    """An optional integer field as written by any client: missing, null or unreadable → `default`."""
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def set_condition(conditions: Any, new: Obj) -> list[Obj]:
    """`conditions` with `new` set as client-go's Set*Condition does: conditions of other types (and
    foreign ones) stay; the same status and reason leaves the current one as is; the same status keeps
    its lastTransitionTime; otherwise the old one of that type goes and `new` is appended."""
    conds = [c for c in conditions if isinstance(c, dict)] if isinstance(conditions, list) else []
    cur = next((c for c in conds if c.get("type") == new["type"]), None)
    if cur is not None and cur.get("status") == new.get("status") and cur.get("reason") == new.get("reason"):
        return conds
    if cur is not None and cur.get("status") == new.get("status") and cur.get("lastTransitionTime"):
        new = {**new, "lastTransitionTime": cur["lastTransitionTime"]}
    return [c for c in conds if c.get("type") != new["type"]] + [new]


def _rv(obj: Obj) -> int:
    """The resourceVersion as a number (the embedded server's are; an opaque one counts as 0)."""
    return as_int((obj.get("metadata") or {}).get("resourceVersion"))


def key_of(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Informer:
    """A cache of one resource kept current by watch_with_resume; `on_change` sees every change.

    Shared (see `Informers`): several controllers may `run()` the same informer; one watch
    serves them all and stops when the last of them stops.
    """

    def __init__(
        self,
        client: KubeClient,
        res: Res,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        on_change: OnChange | None = None,
    ) -> None:
        self.client, self.res = client, res
        self.namespace, self.labels, self.fields = namespace, labels, fields
        self.on_change: list[OnChange] = [on_change] if on_change else []
        self.store: dict[tuple[str, str], Obj] = {}
        self.synced = asyncio.Event()
        self._task: asyncio.Future[None] | None = None
        self._runners = 0

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.store.get((namespace, name))

    async def write_status(self, obj: Obj, status: Obj) -> None:
        """Patch `obj`'s status subresource (if it is still the version read) and keep the answer in
        the cache, so the next reconcile (before the watch event arrives) compares against what was
        written; a vanished object is done, a changed one a Conflict (the worker retries)."""
        from runtime.kube.errors import KubeNotFound

        meta = obj["metadata"]
        # the status as read, or a conflict: a condition someone else adds meanwhile is never lost
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        try:
            out = await self.client.patch(
                self.res, meta["name"], body, namespace=meta.get("namespace"), subresource="status"
            )
        except KubeNotFound:
            return
        self.remember(out)

    def remember(self, obj: Obj) -> None:
        """Cache what a write answered — unless the watch already delivered a newer version: a
        response can arrive after the events of later writes (someone else's), and must not hide them."""
        key = key_of(obj)
        cached = self.store.get(key)
        if cached is None or _rv(cached) <= _rv(obj):
            self.store[key] = obj

    def items(self) -> list[Obj]:
        return list(self.store.values())

    async def run(self) -> None:
        """Keep the cache current until cancelled (the watch itself is shared between callers)."""
        self._runners += 1
        if self._task is None:
            self._task = asyncio.ensure_future(self._watch())
        task = self._task
        try:
            await asyncio.shield(task)
        finally:
            self._runners -= 1
            if self._runners == 0:
                task.cancel()
                self._task = None
                self.synced.clear()

    async def _watch(self) -> None:
        self.store.clear()
        events = watch_with_resume(self.client, self.res, self.namespace, self.labels, self.fields)
        async for typ, obj in events:
            if obj is None:  # LISTED
                self.synced.set()
                continue
            key = key_of(obj)
            prev = self.store.get(key)
            if typ == "DELETED":
                self.store.pop(key, None)
            else:
                self.store[key] = obj
            for fn in self.on_change:
                try:
                    fn("ADDED" if typ == "SYNC" else typ, obj, prev)
                except Exception as exc:  # a handler's bug must not end the watch others share
                    log.warning("%s: handler %s failed on %s: %s", self.res, fn, key, describe(exc))


class Informers:
    """One Informer per (resource, namespace, selectors) for the controllers of one client.

    client-go's SharedInformerFactory: controllers watching pods or nodes share a watch and a cache
    instead of decoding every event once per controller. Every controller is built from one (and
    talks through its client); run_controllers makes one and passes it to every controller it starts.
    """

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self._by_key: dict[tuple[Any, ...], Informer] = {}

    def get(
        self,
        res: Res,
        *,
        namespace: str | None = None,
        labels: Selector = None,
        fields: Selector = None,
        on_change: OnChange | None = None,
    ) -> Informer:
        """The Informer for (resource, namespace, selectors), with `on_change` added."""
        key = (res, namespace, selector(labels), selector(fields))
        inf = self._by_key.get(key)
        if inf is None:
            inf = Informer(self.client, res, namespace=namespace, labels=labels, fields=fields)
            self._by_key[key] = inf
        if on_change is not None:
            inf.on_change.append(on_change)
            for obj in inf.items():  # a late subscriber still sees what is already cached
                on_change("ADDED", obj, None)
        return inf


class WorkQueue:
    """Keys waiting for reconcile; a key is queued at most once and never processed twice at a time."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._dirty: set[str] = set()

    def add(self, key: str) -> None:
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> str:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: str) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return self._queue.qsize()


async def run_worker(
    name: str,
    queue: WorkQueue,
    reconcile: Callable[[str], Awaitable[None]],
    health: ControllerHealth | None = None,
) -> None:
    """Reconcile keys forever; a failed key is re-queued with its own backoff (reset on success).

    Any exception of one reconcile costs that key a retry, never the worker: retryable API errors
    (conflicts, timeouts) quietly, anything else recorded in `health` (logged once, counted, the
    controller reported failing until the key reconciles or is gone).
    """
    health = health if health is not None else ControllerHealth()
    health.register(name)
    delays: dict[str, Any] = {}
    while True:
        key = await queue.get()
        try:
            await reconcile(key)
            delays.pop(key, None)
            health.succeeded(name, key)
        except Exception as exc:
            if isinstance(exc, Conflict) or (isinstance(exc, KedgeError) and is_retryable(exc)):
                delay = next(delays.setdefault(key, backoff(initial=0.1, cap=10.0)))
                health.retried(name)
                log.debug("%s: %s failed (%s); retry in %.1fs", name, key, exc, delay)
            else:
                delay = next(delays.setdefault(key, backoff(initial=0.2, cap=60.0)))
                health.failed(name, key, exc)
            queue.add_after(key, delay)
        finally:
            queue.done(key)


async def run_all(name: str, *coros: Awaitable[None]) -> None:
    """Run a controller's informers and workers; the first to fail ends them all and re-raises."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            t.result()
        raise RuntimeError(f"controller {name}: a task ended unexpectedly")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
