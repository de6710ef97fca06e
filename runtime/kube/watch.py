"""List-then-watch that never gives up: the loop every controller and the cloud's sync builds on.

Shape (kopf's): list → ("SYNC", obj)… → ("LISTED", None) → watch from the list's resourceVersion →
("ADDED"|"MODIFIED"|"DELETED", obj)… Why not lightkube's watch: it resumes from the last version
with no special case for 410, so under an always-retry policy it loops on "Gone" forever, and it
sends the request outside its guarded block, so connect errors bypass `on_error`. Here each watch
request is driven directly (KubeClient.watch_stream) and:

- 410 Gone → relist at once; the relist is diffed against a store of last-seen objects and emits
  DELETED for every key (namespace/name + uid) no longer present, ADDED for new keys and MODIFIED
  for changed resourceVersions — so consumers never miss a deletion that happened in the gap;
- connection errors / silent connections → capped, jittered backoff, then resume from the last
  resourceVersion seen (bookmarks advance it without emitting anything);
- the server ending a watch (timeoutSeconds), or a watch silent for longer than `read_timeout`
  (a partition that dropped packets instead of resetting the connection) → resume at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from runtime.backoff import backoff
from runtime.errors import Unreachable
from runtime.kube.client import KubeClient
from runtime.kube.errors import ApiError, Gone
from runtime.kube.resources import Res
from runtime.kube.retry import retryable
from runtime.kube.wire import Selector

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # namespace, name, uid
Event = tuple[str, "dict[str, Any] | None"]


def object_key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or ""))


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def relist_diff(store: dict[Key, dict[str, Any]], items: list[dict[str, Any]]) -> list[Event]:
    """Events that turn `store` into `items` (and update `store` in place): DELETED first."""
    fresh = {object_key(o): o for o in items}
    events: list[Event] = [("DELETED", store[k]) for k in store if k not in fresh]
    for key, obj in fresh.items():
        old = store.get(key)
        if old is None:
            events.append(("ADDED", obj))
        elif _rv(old) != _rv(obj):
            events.append(("MODIFIED", obj))
    store.clear()
    store.update(fresh)
    return events


async def watch_with_resume(
    client: KubeClient,
    res: Res,
    namespace: str | None = None,
    labels: Selector = None,
    fields: Selector = None,
    *,
    timeout_seconds: int = 300,
    read_timeout: float | None = None,
    delays: Callable[[], Iterator[float]] = lambda: backoff(initial=0.5, cap=30.0),
) -> AsyncIterator[Event]:
    """Yield ("SYNC", obj)…, ("LISTED", None), then live events forever (until cancelled).

    `read_timeout` bounds how long a watch may stay silent before it is presumed dead and resumed
    (default 90 s; the server's bookmarks keep a healthy idle watch talking).
    """
    store: dict[Key, dict[str, Any]] = {}
    listed = False
    rv: str | None = None
    wait = delays()
    while True:
        try:
            if rv is None:  # (re)list
                result = await client.list(res, namespace=namespace, labels=labels, fields=fields)
                rv = result.resource_version
                if not listed:
                    for obj in result.items:
                        store[object_key(obj)] = obj
                        yield "SYNC", obj
                    listed = True
                    yield "LISTED", None
                else:
                    for event in relist_diff(store, result.items):
                        yield event
                wait = delays()
            async for ev in client.watch_stream(
                res, namespace=namespace, labels=labels, fields=fields, resource_version=rv,
                timeout_seconds=timeout_seconds, read_timeout=read_timeout,
            ):  # fmt: skip
                wait = delays()  # the watch is healthy: next failure starts the schedule over
                obj = ev.object
                rv = _rv(obj) or rv
                if ev.type == "BOOKMARK":
                    continue
                key = object_key(obj)
                if ev.type == "DELETED":
                    store.pop(key, None)
                else:
                    store[key] = obj
                yield ev.type, obj
        except Gone:
            log.info("watch %s: resourceVersion %s expired (410), relisting", res.plural, rv)
            rv = None
        except (Unreachable, ApiError) as exc:
            floor = retryable(exc)
            if floor is None:
                raise
            delay = max(floor, next(wait))
            log.warning("watch %s: %s; retrying in %.1fs", res.plural, exc, delay)
            await asyncio.sleep(delay)
