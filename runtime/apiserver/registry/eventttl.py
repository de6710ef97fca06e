"""Events expire, as kube-apiserver's ``--event-ttl`` makes them (default one hour).

kube-apiserver writes every Event with an etcd lease of that TTL, so an event disappears TTL after
its last write. kedge keeps no lease: an event's last write is read from the event itself — the
latest of ``metadata.creationTimestamp``, ``lastTimestamp``, ``eventTime`` and
``series.lastObservedTime`` (every writer that updates an event moves one of them) — so expiry also
survives a restart of the server. ``expire(store, ttl)`` deletes what is due (watchers see DELETED,
as they do when etcd's lease ends); ``run`` sweeps every ``min(ttl / 10, 60)`` seconds.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import time
from collections.abc import Callable
from typing import Any

from runtime.apiserver.registry.storage import Store

log = logging.getLogger("kedge.apiserver.eventttl")

DEFAULT_TTL = 3600.0
EVENT_KEYS = ("/events", "events.k8s.io/events")  # core/v1 and events.k8s.io/v1 storage
_STAMPS = (
    ("metadata", "creationTimestamp"),
    ("lastTimestamp",),
    ("eventTime",),
    ("series", "lastObservedTime"),
)


def _epoch(s: Any) -> float | None:
    if not isinstance(s, str) or len(s) < 19:
        return None
    try:
        return float(calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def last_write(obj: dict[str, Any]) -> float:
    """The latest time the event says it was written (0 when it says none)."""
    best = 0.0
    for path in _STAMPS:
        v: Any = obj
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        t = _epoch(v)
        if t is not None:
            best = max(best, t)
    return best


async def expire(store: Store, ttl: float, now: float) -> int:
    """Delete every event last written more than ``ttl`` seconds before ``now``; how many went."""
    changes = []
    for res in EVENT_KEYS:
        if res not in store.data:
            continue
        for key, entry in store.items(res, None):
            obj = entry.obj()
            if last_write(obj) + ttl <= now:
                obj.setdefault("metadata", {})["resourceVersion"] = str(store.next_rv())
                changes.append(("DELETED", res, key, obj))
    if changes:
        await store.commit(changes)
        log.info("%d events expired (event TTL %gs)", len(changes), ttl)
    return len(changes)


async def run(store: Store, ttl: float, clock: Callable[[], float] = time.time) -> None:
    """Sweep until cancelled; a sweep that fails (the disk refusing the commit) is retried later."""
    every = max(0.2, min(ttl / 10, 60.0))
    while True:
        await asyncio.sleep(every)
        try:
            await expire(store, ttl, clock())
        except Exception as exc:  # the storage said why (readyz shows it); the next sweep retries
            log.warning("event expiry failed: %s", exc)
