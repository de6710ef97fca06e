"""Persisted ack state: the last resourceVersion each edge committed, per ``<node>.<uid>``.

Where: KubeEdge's own ObjectSync CRs (reliablesyncs.kubeedge.io/v1alpha1), one per node and object,
named ``<node>.<uid>``, in the cloud's namespace (design.md §5: "per-node sync state"); the RBAC and
CRD are already installed by `kedge init`. Why one CR per object rather than one object per node: an
ack then costs one small status patch whatever the node holds (a per-node object grows with its pods
and every ack would rewrite all of it, racing between replicas), the content is KubeEdge's, so its
tooling reads it, and deletes are exact. Writes are batched: acks only mark names dirty and a flusher
writes the latest value of each dirty name once per ``flush_every`` seconds with bounded concurrency,
so a burst of acks for one object costs one write.

The wire resource (needed to build a delete for an object that vanished) is kept in an annotation;
each node's cache epoch is a CR named ``<node>.cache-epoch`` (kind CacheEpoch).

Replicas: the node's session holder writes its entries; every replica follows the CRs (``follow``)
for the nodes it does not hold, so an edge that moves here after its replica died resyncs from what it
acknowledged there — only the changes — not from what was stored when this replica started.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeNotFound
from runtime.kube.resources import OBJECTSYNCS
from runtime.kube.watch import watch_with_resume
from runtime.protocol import parse_resource
from runtime.protocol.delivery import AckEntry, AckState

log = logging.getLogger("kedge.cloud.sync")

ANN_RESOURCE = "kedge.io/resource"
ANN_NODE = "kedge.io/node"
LABEL = "kedge.io/ack-state"
EPOCH_SUFFIX = "cache-epoch"
KINDS = {
    "pod": "Pod",
    "configmap": "ConfigMap",
    "secret": "Secret",
    "node": "Node",
    "device": "Device",
    "devicemodel": "DeviceModel",
}


class SyncStore:
    """Loads an ``AckState`` from the cluster and writes its changes back, batched."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        *,
        flush_every: float = 1.0,
        concurrency: int = 16,
        owner: str = "true",
        epoch_suffix: str = EPOCH_SUFFIX,
    ) -> None:
        """``owner`` is the value of the ``kedge.io/ack-state`` label this store reads and writes, so
        that each controller loads only its own entries ("true": the edge controller, "devices": the
        device controller), each with its own epoch record ``<node>.<epoch_suffix>``."""
        self.client, self.namespace = client, namespace
        self.owner, self.epoch_suffix = owner, epoch_suffix
        self.flush_every, self.concurrency = flush_every, concurrency
        self.writes = 0  # API writes done (a metric for tests and the benchmark)
        self._dirty: set[str] = set()
        self._epochs_dirty: set[str] = set()
        self._exists: set[str] = set()  # CR names known to exist
        self._kick = asyncio.Event()
        self._in_flight = 0  # entries taken by the running flush and not yet written
        self.gate: Callable[[], Awaitable[object]] | None = None  # awaited before each flush

    async def load(self) -> AckState:
        state = AckState()
        found = await self.client.list(OBJECTSYNCS, namespace=self.namespace, labels={LABEL: self.owner})
        for item in found.items:
            m = item.get("metadata") or {}
            name = str(m.get("name") or "")
            ann = m.get("annotations") or {}
            rv = str((item.get("status") or {}).get("objectResourceVersion") or "")
            node = str(ann.get(ANN_NODE) or "")
            self._exists.add(name)
            if not node:
                continue
            if name == self._epoch_name(node):
                state.epochs[node] = rv
            elif ann.get(ANN_RESOURCE):
                state.entries[name] = AckEntry(str(ann[ANN_RESOURCE]), rv)
        log.info("loaded ack state: %d objects, %d epochs", len(state.entries), len(state.epochs))
        return state

    async def follow(self, state: AckState, held: Callable[[str], bool]) -> None:
        """Apply the CRs' changes to ``state`` for the nodes ``held`` does not name (forever)."""
        async for event, item in watch_with_resume(
            self.client, OBJECTSYNCS, self.namespace, labels={LABEL: self.owner}
        ):
            if item is not None:
                self.observe(state, event, item, held)

    def observe(self, state: AckState, event: str, item: dict[str, Any], held: Callable[[str], bool]) -> None:
        """One watch event of an ObjectSync: what exists, and (for a node held elsewhere, with no write
        of ours pending) its entry or epoch as the other replica wrote it."""
        m = item.get("metadata") or {}
        name, ann = str(m.get("name") or ""), m.get("annotations") or {}
        if event == "DELETED":
            self._exists.discard(name)
        else:
            self._exists.add(name)
        node = str(ann.get(ANN_NODE) or "")
        if not node or held(node) or name in self._dirty:
            return
        rv = str((item.get("status") or {}).get("objectResourceVersion") or "")
        if name == self._epoch_name(node):
            if rv and event != "DELETED":
                state.epochs[node] = rv
        elif event == "DELETED":
            state.entries.pop(name, None)
        elif rv and ann.get(ANN_RESOURCE):  # created, then its status patched: the RV comes second
            state.entries[name] = AckEntry(str(ann[ANN_RESOURCE]), rv)

    def mark(self, node: str, uid: str) -> None:
        self._dirty.add(AckState.name(node, uid))
        self._kick.set()

    def mark_node(self, state: AckState, node: str, before: set[str]) -> None:
        """After ``forget_node``: every name that was there (``before``) must go, and the epoch be written."""
        self._dirty |= before
        self._epochs_dirty.add(node)
        self._kick.set()

    def mark_epoch(self, node: str) -> None:
        self._epochs_dirty.add(node)
        self._kick.set()

    @property
    def backlog(self) -> int:
        """Entries not yet persisted: still dirty, or in the flush that is running."""
        return len(self._dirty) + len(self._epochs_dirty) + self._in_flight

    async def run(self, state: AckState) -> None:
        """Flush forever (until cancelled); a failed write stays dirty and is retried next round."""
        while True:
            await self._kick.wait()
            await asyncio.sleep(self.flush_every)
            self._kick.clear()
            if self.gate is not None:  # Lease renewals first (runtime/cloud/lease_gate.py)
                await self.gate()
            await self.flush(state)

    async def flush(self, state: AckState) -> None:
        names, self._dirty = self._dirty, set()
        epochs, self._epochs_dirty = self._epochs_dirty, set()
        sem = asyncio.Semaphore(self.concurrency)
        failed: list[str] = []

        async def one(name: str, write: Callable[[], Awaitable[None]], retry: set[str], key: str) -> None:
            async with sem:
                try:
                    await write()
                except Exception as exc:  # retried on the next flush
                    failed.append(f"{name}: {exc}")
                    retry.add(key)
                    self._kick.set()
                finally:
                    self._in_flight -= 1

        jobs = [
            one(n, functools.partial(self._write, n, state.entries.get(n)), self._dirty, n) for n in names
        ]
        jobs += [
            one(
                self._epoch_name(node),
                functools.partial(self._write_epoch, node, state.epochs.get(node, "")),
                self._epochs_dirty,
                node,
            )
            for node in epochs
        ]
        self._in_flight += len(jobs)
        try:
            await asyncio.gather(*jobs)
        except asyncio.CancelledError:  # stopping mid-flush: the final flush writes this batch again
            self._dirty |= names
            self._epochs_dirty |= epochs
            raise
        finally:
            self._in_flight = 0  # jobs cancelled before they started never count themselves down
        if failed:  # one line per flush, not one per object (design.md §3)
            log.warning(
                "ack state: %d write(s) failed, retried next flush; first: %s", len(failed), failed[0]
            )

    async def _write(self, name: str, entry: AckEntry | None) -> None:
        if entry is None:
            if name in self._exists:
                try:
                    await self.client.delete(OBJECTSYNCS, name, namespace=self.namespace)
                    self.writes += 1
                except KubeNotFound:
                    pass
                self._exists.discard(name)
            return
        node = name.rsplit(".", 1)[0]
        await self._upsert(name, node, entry.resource, entry.rv)

    async def _write_epoch(self, node: str, epoch: str) -> None:
        await self._upsert(self._epoch_name(node), node, "", epoch, kind="CacheEpoch")

    def _epoch_name(self, node: str) -> str:
        return f"{node}.{self.epoch_suffix}"

    async def _upsert(self, name: str, node: str, resource: str, rv: str, kind: str = "") -> None:
        if name not in self._exists:
            r = parse_resource(resource) if resource else None
            ann = {ANN_NODE: node}
            if resource:
                ann[ANN_RESOURCE] = resource
            body = {
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": {LABEL: self.owner},
                    "annotations": ann,
                },
                "spec": {
                    "objectAPIVersion": "v1",
                    "objectKind": kind or (KINDS.get(r.type, r.type) if r else ""),
                    "objectName": r.name if r else node,
                },
            }
            try:
                await self.client.create(OBJECTSYNCS, body, namespace=self.namespace)
                self.writes += 1
            except AlreadyExists:
                pass
            self._exists.add(name)
        try:
            await self.client.patch(
                OBJECTSYNCS,
                name,
                {"status": {"objectResourceVersion": rv}},
                namespace=self.namespace,
                subresource="status",
            )
            self.writes += 1
        except KubeNotFound:  # deleted underneath us (another replica forgot the node): recreate next time
            self._exists.discard(name)
            raise
