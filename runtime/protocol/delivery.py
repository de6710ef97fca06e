"""Reliable cloud→edge delivery, sans I/O (design.md §4): pending acks, resends, ack state, resync.

Why sans I/O: the rules that keep delivery correct (one pending message per object, resend until
acked, never drop, resync only what changed) are the hard part; they are tested here with a fake
clock and no sockets. ``runtime/cloud/hub/server.py`` only shuttles frames in (``receive``), messages out
(``data_to_send``) and calls ``tick`` at ``next_deadline``. Nothing here awaits or reads a clock:
``now`` is always an argument (seconds, any monotonic origin).

Keys: the caller chooses the reliable key; use the object's **UID** (KubeEdge's ObjectSync is
``<node>.<uid>``). Keyed by UID, an object recreated under the same name is two keys, so its delete
and its insert are both delivered; keyed by name the insert would replace the pending delete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime.protocol.message import (
    ACK_CONTENT,
    GROUP_RESOURCE,
    OP_DELETE,
    OP_INSERT,
    OP_RESPONSE,
    OP_UPDATE,
    SRC_EDGECONTROLLER,
    Message,
    new_message,
)
from runtime.protocol.resource import parse_resource

RESEND_AFTER = 5.0  # seconds between resends (KubeEdge's ack timeout)
MAX_RESENDS = 12  # after these, a message waits for the next reconnect (never dropped)


def is_ack(msg: Message) -> bool:
    """An edge "OK" for a cloud message (beehive response, content "OK", parent set)."""
    return msg.operation == OP_RESPONSE and msg.content == ACK_CONTENT and bool(msg.parent_msg_id)


@dataclass(frozen=True, slots=True)
class Acked:
    """The edge committed the message for ``key``; ``rv`` is its header.resourceversion."""

    key: str
    rv: str
    operation: str
    resource: str
    msg_id: str


@dataclass(slots=True)
class _Pending:
    msg: Message
    due: float
    resends: int = 0


class Downlink:
    """Reliable delivery to one node: at most one pending message per key, resent until acked.

    ``send`` queues a message for output and makes it the key's pending message (a newer one replaces
    an older, whose late ack is then ignored). ``tick`` re-queues overdue ones every ``resend_after``
    seconds, ``max_resends`` times; after that a message stays pending, silent, until
    ``reconnected``. While ``online`` is False nothing is queued for output (the edge is away) but
    pending messages are kept and all go out, in send order, on ``reconnected``. Slotted: the cloud
    holds one per edge.
    """

    __slots__ = ("_by_id", "_out", "_pending", "max_resends", "online", "resend_after", "resends")

    def __init__(
        self, resend_after: float = RESEND_AFTER, max_resends: int = MAX_RESENDS, *, online: bool = True
    ) -> None:
        if resend_after <= 0 or max_resends < 0:
            raise ValueError("resend_after must be > 0 and max_resends >= 0")
        self.resend_after = resend_after
        self.max_resends = max_resends
        self.online = online
        self.resends = 0  # total resends (a metric)
        self._pending: dict[str, _Pending] = {}  # key -> pending, in send order
        self._by_id: dict[str, str] = {}  # msg_id -> key, for pending messages only
        self._out: list[Message] = []

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def pending(self) -> list[tuple[str, Message]]:
        """(key, message) for every unacked message, oldest send first."""
        return [(k, p.msg) for k, p in self._pending.items()]

    def is_pending(self, key: str) -> bool:
        return key in self._pending

    def send(self, msg: Message, key: str, now: float) -> None:
        """Make ``msg`` the pending message for ``key`` and queue it for output (when online)."""
        old = self._pending.pop(key, None)
        if old is not None:
            self._by_id.pop(old.msg.msg_id, None)
        self._pending[key] = _Pending(msg, due=now + self.resend_after)
        self._by_id[msg.msg_id] = key
        if self.online:
            self._out.append(msg)

    def receive(self, msg: Message, now: float) -> list[Acked]:
        """Feed a message from the edge. Acks of pending messages clear them; anything else is ignored."""
        if not is_ack(msg):
            return []
        key = self._by_id.pop(msg.parent_msg_id, None)
        if key is None:
            return []  # an ack of a response, of a superseded message, or a duplicate
        p = self._pending.pop(key)
        return [Acked(key, p.msg.resourceversion, p.msg.operation, p.msg.resource, p.msg.msg_id)]

    def tick(self, now: float) -> int:
        """Re-queue every overdue pending message that has resends left; returns how many."""
        if not self.online:
            return 0
        n = 0
        for p in self._pending.values():
            if p.due <= now and p.resends < self.max_resends:
                p.resends += 1
                p.due = now + self.resend_after
                self._out.append(p.msg)
                n += 1
        self.resends += n
        return n

    def next_deadline(self) -> float | None:
        """When ``tick`` next has work; None when nothing can be resent before a reconnect."""
        if not self.online:
            return None
        dues = [p.due for p in self._pending.values() if p.resends < self.max_resends]
        return min(dues) if dues else None

    def disconnected(self) -> None:
        """The session ended: drop queued output, keep every pending message."""
        self.online = False
        self._out.clear()

    def reconnected(self, now: float) -> None:
        """A new session: every pending message goes out again, in send order, with fresh resends."""
        self.online = True
        self._out = [p.msg for p in self._pending.values()]
        for p in self._pending.values():
            p.resends = 0
            p.due = now + self.resend_after

    def forget(self, keys: Iterable[str] | None = None) -> None:
        """Drop pending messages and their queued output (all when ``keys`` is None), e.g. when the
        edge announces a new epoch (each controller forgets its own keys)."""
        dropped: set[str] = set()
        for key in list(self._pending) if keys is None else list(keys):
            p = self._pending.pop(key, None)
            if p is not None:
                self._by_id.pop(p.msg.msg_id, None)
                dropped.add(p.msg.msg_id)
        if keys is None:
            self._out.clear()
        elif dropped:
            self._out = [m for m in self._out if m.msg_id not in dropped]

    def data_to_send(self) -> list[Message]:
        """Messages to write now, in order, each once (resends queued while a slow writer was busy
        collapse into one); the caller owns them."""
        out, self._out = self._out, []
        if len(out) > 1:
            unique: dict[str, Message] = {}
            for m in out:
                unique.setdefault(m.msg_id, m)  # the first occurrence keeps its place
            out = list(unique.values())
        return out


# --- ack state -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AckEntry:
    """What the edge last committed for one object: its wire resource and resourceVersion."""

    resource: str
    rv: str


@dataclass
class AckState:
    """Last acked RV per node and object UID (``<node>.<uid>``) plus each node's cache epoch.

    The sync controller persists it (``to_dict``/``from_dict``; KubeEdge's ObjectSync has the same
    content) so a restarted cloud resyncs only what changed.
    """

    entries: dict[str, AckEntry] = field(default_factory=dict)  # "<node>.<uid>" -> entry
    epochs: dict[str, str] = field(default_factory=dict)  # node -> cache epoch

    @staticmethod
    def name(node: str, uid: str) -> str:
        return f"{node}.{uid}"

    def get(self, node: str, uid: str) -> AckEntry | None:
        return self.entries.get(self.name(node, uid))

    def record(self, node: str, uid: str, resource: str, rv: str) -> None:
        self.entries[self.name(node, uid)] = AckEntry(resource, rv)

    def remove(self, node: str, uid: str) -> None:
        self.entries.pop(self.name(node, uid), None)

    def apply(self, node: str, ev: Acked) -> None:
        """Record an ack whose key is the object's UID: deletes remove the entry, others record the RV."""
        if ev.operation == OP_DELETE:
            self.remove(node, ev.key)
        else:
            self.record(node, ev.key, ev.resource, ev.rv)

    def for_node(self, node: str) -> dict[str, AckEntry]:
        """{uid: entry} for one node. UIDs never contain '.', node names may: split on the last one."""
        prefix = f"{node}."
        return {
            name[len(prefix) :]: e
            for name, e in self.entries.items()
            if name.startswith(prefix) and "." not in name[len(prefix) :]
        }

    def forget_node(self, node: str) -> None:
        for uid in self.for_node(node):
            self.remove(node, uid)

    def observe_epoch(self, node: str, epoch: str) -> bool:
        """Note the epoch the edge announced. A different one (rebuilt or empty cache) forgets the node's
        acks and returns True: everything must be sent again. An empty epoch (KubeEdge peer) changes
        nothing."""
        if not epoch:
            return False
        old = self.epochs.get(node)
        self.epochs[node] = epoch
        if old is not None and old != epoch:
            self.forget_node(node)
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": {k: {"resource": e.resource, "rv": e.rv} for k, e in self.entries.items()},
            "epochs": dict(self.epochs),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AckState:
        entries = {k: AckEntry(str(v["resource"]), str(v["rv"])) for k, v in d.get("entries", {}).items()}
        return cls(entries=entries, epochs={str(k): str(v) for k, v in d.get("epochs", {}).items()})


# --- resync ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Current:
    """An object the node should have: its wire resource (``<ns>/<type>/<name>``), RV and body."""

    resource: str
    rv: str
    obj: Any


@dataclass(frozen=True)
class SyncAction:
    """One step of a resync: ``operation`` is insert, update or delete, ``key`` the object UID."""

    operation: str
    key: str
    resource: str
    rv: str
    obj: Any


def plan_resync(current: Mapping[str, Current], acked: Mapping[str, AckEntry]) -> list[SyncAction]:
    """What to send so the edge ends up with exactly ``current`` ({uid: Current}), given ``acked``.

    Unchanged RV → nothing; changed RV → update; never acked → insert; acked UID no longer present →
    delete (an object recreated under the same name has a new UID: delete old + insert new). Deletes
    come first so that a name's old incarnation goes before its new one. "Changed" means the RV
    differs — RVs are opaque and never compared for order.
    """
    deletes = [
        SyncAction(OP_DELETE, uid, e.resource, "", _tombstone(uid, e.resource))
        for uid, e in sorted(acked.items(), key=lambda kv: kv[1].resource)
        if uid not in current
    ]
    upserts: list[SyncAction] = []
    for uid, c in sorted(current.items(), key=lambda kv: kv[1].resource):
        prev = acked.get(uid)
        if prev is None:
            upserts.append(SyncAction(OP_INSERT, uid, c.resource, c.rv, c.obj))
        elif prev.rv != c.rv:
            upserts.append(SyncAction(OP_UPDATE, uid, c.resource, c.rv, c.obj))
    return deletes + upserts


def resync_steps(
    current: Mapping[str, Current], acked: Mapping[str, AckEntry], pending: Mapping[str, Message]
) -> list[SyncAction]:
    """What a resync on (re)connect sends: ``plan_resync``, plus a delete for an insert/update still
    pending for an object now gone, minus the steps the Downlink already holds identically (they were
    re-sent on reconnect). ``pending``: the calling controller's own pending messages only — the
    controllers share a node's Downlink and must not delete each other's objects."""
    steps = plan_resync(current, acked)
    for key, p in pending.items():
        if key not in current and key not in acked and p.operation != OP_DELETE:
            steps.append(SyncAction(OP_DELETE, key, p.resource, "", _tombstone(key, p.resource)))
    out = []
    for step in steps:
        same = pending.get(step.key)
        if same is not None and same.operation == step.operation and same.resourceversion == step.rv:
            continue
        out.append(step)
    return out


def resync_messages(
    current: Mapping[str, Current],
    acked: Mapping[str, AckEntry],
    *,
    source: str = SRC_EDGECONTROLLER,
    group: str = GROUP_RESOURCE,
) -> list[tuple[str, Message]]:
    """``plan_resync`` as (reliable key, message) pairs ready for ``Downlink.send``."""
    return [
        (a.key, new_message(source, group, a.operation, a.resource, a.obj, resourceversion=a.rv))
        for a in plan_resync(current, acked)
    ]


def _tombstone(uid: str, resource: str) -> dict[str, Any]:
    """The body of a delete for an object the cloud no longer has: just enough metadata to find it."""
    r = parse_resource(resource)
    meta: dict[str, Any] = {"uid": uid}
    if r is not None:
        meta["name"] = r.name
        if r.k8s_namespace:
            meta["namespace"] = r.k8s_namespace
    return {"metadata": meta}
