"""Kubernetes events from the edge, as a kubelet records them (client-go's legacy recorder).

``Recorder.pod(pod, container, type, reason, message)`` / ``Recorder.node(...)`` are synchronous and
never block: the event is correlated at once and queued in memory; ``run(stop)`` hands each one to
``send`` (EdgeHub.send: written to the channel when online, to the durable outbox while offline — the
outbox drops events first, oldest first, and counts them). The in-memory queue is bounded too: when
it is full the oldest event goes and ``dropped`` counts it.

Correlation follows client-go's EventCorrelator:

- spam filter: a token bucket per source and involved object (burst 25, one token per 5 minutes);
  an event without a token is discarded and counted in ``filtered``;
- aggregation: once 10 events with the same source, object, type and reason but different messages
  were seen within 10 minutes, further ones become one event whose message starts with
  ``(combined from similar events): ``;
- deduplication: an event equal to one recorded within 10 minutes (same key, message included) is
  not a new object: its ``count`` grows and ``lastTimestamp`` moves, sent as ``patch <ns>/event/<name>``;
  a new one is ``insert <ns>/event/<name>`` (KubeEdge's metaclient resources; design.md §4).

Names, ``source`` ({component: kubelet, host: node}), ``reportingComponent``/``reportingInstance`` and
the involved object's ``fieldPath`` (``spec.containers{name}``) are what kubelet writes. Node events
go to the ``default`` namespace with the node name as the object's UID, as kubelet's node reference.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runtime.protocol import GROUP_META, OP_INSERT, OP_PATCH, SRC_EDGED, Message, new_message

log = logging.getLogger("kedge.edge.events")

NORMAL, WARNING = "Normal", "Warning"
COMPONENT = "kubelet"
COMBINED = "(combined from similar events): "
WINDOW = 600.0  # client-go: defaultAggregateIntervalInSeconds and the dedup cache's reach
SIMILAR_MAX = 10  # defaultAggregateMaxEvents
BURST, REFILL = 25, 300.0  # defaultSpamBurst, one token per 5 minutes (defaultSpamQPS = 1/300)
CACHE = 4096  # maxLruCacheEntries
QUEUE = 1000  # events waiting for `send` (client-go's broadcaster queue is 1000 deep too)

Send = Callable[[Message], Awaitable[Any]]


def _ts(t: float) -> str:
    return dt.datetime.fromtimestamp(int(t), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first: float
    last: float


class _Bucket:
    def __init__(self, now: float) -> None:
        self.tokens, self.at = float(BURST), now

    def take(self, now: float) -> bool:
        self.tokens = min(float(BURST), self.tokens + (now - self.at) / REFILL)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _lru_put(cache: collections.OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHE:
        cache.popitem(last=False)


def pod_ref(pod: dict[str, Any], container: str | None = None, init: bool = False) -> dict[str, Any]:
    """kubelet's ObjectReference for a pod, or one of its containers (fieldPath)."""
    meta = pod.get("metadata") or {}
    ref = {
        "kind": "Pod",
        "namespace": meta.get("namespace", "default"),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": "v1",
    }
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = meta["resourceVersion"]
    if container is not None:
        ref["fieldPath"] = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return ref


class Recorder:
    def __init__(self, node: str, clock: Callable[[], float] = time.time, queue: int = QUEUE) -> None:
        self.node_name, self.clock = node, clock
        self.queue: collections.deque[Message] = collections.deque()
        self.queue_max = queue
        self._wake = asyncio.Event()
        self._buckets: collections.OrderedDict[tuple[Any, ...], _Bucket] = collections.OrderedDict()
        self._similar: collections.OrderedDict[tuple[Any, ...], dict[str, float]] = collections.OrderedDict()
        self._seen: collections.OrderedDict[tuple[Any, ...], _Seen] = collections.OrderedDict()
        self.recorded = self.filtered = self.dropped = self.sent = 0

    # --- what the pods and the node call ---------------------------------------------------------
    def pod(
        self,
        pod: dict[str, Any],
        container: str | None,
        type_: str,
        reason: str,
        message: str,
        init: bool = False,
    ) -> None:
        self.event(pod_ref(pod, container, init), type_, reason, message)

    def node(self, type_: str, reason: str, message: str) -> None:
        ref = {"kind": "Node", "name": self.node_name, "uid": self.node_name, "namespace": ""}
        self.event(ref, type_, reason, message)

    def event(self, ref: dict[str, Any], type_: str, reason: str, message: str) -> None:
        now = self.clock()
        obj = tuple(ref.get(k, "") for k in ("kind", "namespace", "name", "uid", "apiVersion", "fieldPath"))
        spam = (COMPONENT, self.node_name, *obj[:5])
        bucket = self._buckets.get(spam) or _Bucket(now)
        _lru_put(self._buckets, spam, bucket)
        if not bucket.take(now):
            self.filtered += 1
            return
        key, message = self._aggregate((*obj, type_, reason), message, now)
        seen = self._seen.get(key)
        namespace = ref.get("namespace") or "default"
        if seen is not None and now - seen.last <= WINDOW:
            seen.count += 1
            seen.last = now
            op = OP_PATCH
        else:
            seen = _Seen(f"{ref.get('name', '')}.{int(now * 1e9):x}", namespace, 1, now, now)
            op = OP_INSERT
        _lru_put(self._seen, key, seen)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": seen.name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": {"component": COMPONENT, "host": self.node_name},
            "firstTimestamp": _ts(seen.first),
            "lastTimestamp": _ts(seen.last),
            "count": seen.count,
            "type": type_,
            "eventTime": None,
            "reportingComponent": COMPONENT,
            "reportingInstance": self.node_name,
        }
        # a patch carries the whole event (a valid strategic-merge patch): the cloud can create it
        # when the first one was lost (dropped offline, expired by the API server's TTL)
        content: Any = json.dumps(body, separators=(",", ":")) if op == OP_PATCH else body
        self._queue(new_message(SRC_EDGED, GROUP_META, op, f"{namespace}/event/{seen.name}", content))

    def _aggregate(self, base: tuple[Any, ...], message: str, now: float) -> tuple[tuple[Any, ...], str]:
        """client-go's EventAggregator: (dedup key, message) for this event."""
        msgs = {m: t for m, t in (self._similar.get(base) or {}).items() if now - t <= WINDOW}
        msgs[message] = now
        _lru_put(self._similar, base, msgs)
        if len(msgs) >= SIMILAR_MAX:
            return (*base, COMBINED), COMBINED + message
        return (*base, message), message

    def _queue(self, msg: Message) -> None:
        self.recorded += 1
        self.queue.append(msg)
        while len(self.queue) > self.queue_max:
            self.queue.popleft()
            self.dropped += 1
        self._wake.set()

    # --- delivery --------------------------------------------------------------------------------
    async def run(self, send: Send, stop: asyncio.Event) -> None:
        """Hand queued events to ``send`` in order until ``stop``."""
        while not stop.is_set():
            while self.queue:
                msg = self.queue.popleft()
                try:
                    await send(msg)
                    self.sent += 1
                except Exception as exc:  # an event is never worth a dead task
                    self.dropped += 1
                    log.warning("event %s not sent: %s", msg.resource, exc)
            self._wake.clear()
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    def status(self) -> dict[str, int]:
        return {
            "recorded": self.recorded,
            "sent": self.sent,
            "queued": len(self.queue),
            "filtered": self.filtered,
            "dropped": self.dropped,
        }
