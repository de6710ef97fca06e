"""The edge controller: pods bound to edge nodes (and what they reference) go down to their node only.

Rules (design.md §4 "Reliable delivery"): every object a node should hold — its Node, its pods, the
ConfigMaps and Secrets they reference — goes down as insert/update/delete with the full object and
``header.resourceversion``, through the hub's Downlink keyed by the object's UID (so a pod recreated
under the same name is a delete plus an insert). While a node is connected each watch event is diffed
against what was last sent to it; when it (re)connects, what it should hold is diffed against what it
last *acknowledged* (``AckState``, persisted by ``SyncStore``), so a reconnect or a restarted cloud
sends only what changed — and everything when the edge announces a new cache epoch.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from runtime.cloud.controllers.syncstore import SyncStore
from runtime.cloud.controllers.world import EDGE_LABEL, World
from runtime.cloud.hub.server import CloudHub
from runtime.cloud.hub.session import SessionInfo
from runtime.kube.client import KubeClient
from runtime.kube.resources import CONFIGMAPS, NODES, PODS, SECRETS, Res
from runtime.kube.watch import watch_with_resume
from runtime.protocol import (
    GROUP_RESOURCE,
    OP_DELETE,
    OP_INSERT,
    OP_UPDATE,
    SRC_EDGECONTROLLER,
    new_message,
    parse_resource,
)
from runtime.protocol.delivery import Acked, AckState, Current, _tombstone, resync_steps
from runtime.tasks import supervise

log = logging.getLogger("kedge.cloud.edgecontroller")

WATCHES: tuple[tuple[str, Res, str | None], ...] = (
    ("Node", NODES, EDGE_LABEL),
    ("ConfigMap", CONFIGMAPS, None),
    ("Secret", SECRETS, None),
    ("Pod", PODS, None),
)
# What goes first: referenced objects before the pod that needs them, pods deleted before them.
_RANK = {"node": 0, "configmap": 1, "secret": 1, "pod": 2}


def _rank(resource: str, op: str) -> tuple[int, int]:
    r = parse_resource(resource)
    rank = _RANK.get(r.type if r else "", 3)
    return (0, -rank) if op == OP_DELETE else (1, rank)


def _owned(resource: str) -> bool:
    """A reliable message of this controller (the devices controller shares the node's Downlink)."""
    r = parse_resource(resource)
    return r is not None and r.type in _RANK


class EdgeController:
    """Feeds ``world`` from the API and keeps every connected node's copy equal to it."""

    def __init__(
        self, client: KubeClient, hub: CloudHub, world: World, acks: AckState, store: SyncStore | None = None
    ) -> None:
        self.client, self.hub, self.world, self.acks, self.store = client, hub, world, acks, store
        self.synced = asyncio.Event()
        self.sent: dict[str, dict[str, tuple[str, str]]] = {}  # node -> uid -> (resource, rv) told
        self.messages_sent = 0  # reliable messages handed to the hub (tests assert on it)
        self._listed: set[str] = set()

    def subscribe(self) -> None:
        self.hub.subscribe(on_connect=self.on_connect, on_disconnect=self.on_disconnect, on_ack=self.on_ack)

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._watch(kind, res, labels), name=f"watch-{res.plural}")
            for kind, res, labels in WATCHES
        ]
        if self.store is not None:
            tasks.append(asyncio.create_task(self.store.run(self.acks), name="ack-state-flush"))
            follow = self.store.follow(self.acks, self.hub.connected)  # other replicas' nodes
            tasks.append(asyncio.create_task(follow, name="ack-state-follow"))
        try:
            await supervise(tasks)
        finally:
            if self.store is not None:
                await self.store.flush(self.acks)

    async def _watch(self, kind: str, res: Res, labels: str | None) -> None:
        async for event, obj in watch_with_resume(self.client, res, labels=labels):
            if event == "LISTED":
                self._listed.add(kind)
                if len(self._listed) == len(WATCHES) and not self.synced.is_set():
                    self.synced.set()
                    log.info(
                        "edge controller synced: %d edge nodes, %d bound pods",
                        len(self.world.nodes),
                        len(self.world.pods),
                    )
                    for node in [i.node for i in self.hub.sessions()]:
                        await self.resync(node)
                continue
            assert obj is not None
            touched = self.world.apply(kind, event, obj)
            if self.synced.is_set():
                for node in touched:
                    await self.reconcile(node)
            if kind == "Node" and event == "DELETED":
                for node in touched:
                    self._gone(node)

    # --- sending ---------------------------------------------------------------------------------

    async def _send(self, node: str, op: str, key: str, resource: str, rv: str, obj: Any) -> None:
        msg = new_message(SRC_EDGECONTROLLER, GROUP_RESOURCE, op, resource, obj, resourceversion=rv)
        await self.hub.send(node, msg, reliable_key=key)
        self.messages_sent += 1

    async def reconcile(self, node: str) -> None:
        """A watch event touched ``node``: send it the difference from what it was last told."""
        prev = self.sent.get(node)
        if prev is None or not self.hub.connected(node):
            return  # offline: the resync on its next connect covers it
        desired = self.world.desired(node)
        plan: list[tuple[str, str, str, str, Any]] = []
        for uid, (resource, _) in prev.items():
            if uid not in desired:
                plan.append((OP_DELETE, uid, resource, "", _tombstone(uid, resource)))
        for uid, c in desired.items():
            old = prev.get(uid)
            if old is None:
                plan.append((OP_INSERT, uid, c.resource, c.rv, c.obj))
            elif old[1] != c.rv:
                plan.append((OP_UPDATE, uid, c.resource, c.rv, c.obj))
        self.sent[node] = {uid: (c.resource, c.rv) for uid, c in desired.items()}
        for op, uid, resource, rv, obj in sorted(plan, key=lambda p: _rank(p[2], p[0])):
            await self._send(node, op, uid, resource, rv, obj)

    async def resync(self, node: str) -> None:
        """Send ``node`` what changed since its last acknowledgements (nothing that is pending again)."""
        desired: dict[str, Current] = self.world.desired(node)
        acked = self.acks.for_node(node)
        pending = {k: m for k, m in self.hub.downlink(node).pending() if _owned(m.resource)}
        steps = resync_steps(desired, acked, pending)
        self.sent[node] = {uid: (c.resource, c.rv) for uid, c in desired.items()}
        for a in sorted(steps, key=lambda a: _rank(a.resource, a.operation)):
            await self._send(node, a.operation, a.key, a.resource, a.rv, a.obj)
        n = len(steps)
        log.info(
            "edge %s: resync sent %d message(s) (%d objects, %d acked, %d pending)",
            node,
            n,
            len(desired),
            len(acked),
            len(pending),
        )

    # --- hub callbacks ---------------------------------------------------------------------------

    async def on_connect(self, info: SessionInfo) -> None:
        node = info.node
        before = set(self.acks.for_node(node))
        known = self.acks.epochs.get(node)
        if self.acks.observe_epoch(node, info.epoch):
            log.info(
                "edge %s: new cache epoch %s: its cache is new, everything is sent again", node, info.epoch
            )
            link = self.hub.downlink(node)
            link.forget([k for k, m in link.pending() if _owned(m.resource)])
            if self.store is not None:
                self.store.mark_node(self.acks, node, {AckState.name(node, u) for u in before})
        elif info.epoch and known != info.epoch and self.store is not None:
            self.store.mark_epoch(node)
        if not self.synced.is_set():
            self.sent.pop(node, None)
            return  # the resync happens once every watch has listed
        await self.resync(node)

    async def on_disconnect(self, info: SessionInfo) -> None:
        self.sent.pop(info.node, None)
        if self.synced.is_set() and info.node not in self.world.nodes:
            self._gone(info.node)

    def _gone(self, node: str) -> None:
        """Its Node is deleted: once it is offline, its unacked messages go with it (were it to join
        again, the resync on connect sends it what it lacks)."""
        if not self.hub.connected(node):
            self.hub.forget(node)

    async def on_ack(self, node: str, ev: Acked) -> None:
        if not _owned(ev.resource):
            return  # another controller's message (devices): its ack state is not ours to resync
        self.acks.apply(node, ev)
        if self.store is not None:
            self.store.mark(node, ev.key)
