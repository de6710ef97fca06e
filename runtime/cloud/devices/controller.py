"""The Device controller: Devices and DeviceModels down to their node, DeviceStatus up from it.

Down (design.md §4, as KubeEdge v1.23's devicecontroller sends it): each node gets its Devices
(``<ns>/device/<name>``) and the DeviceModels they use (``<ns>/devicemodel/<name>``) as reliable
insert/update/delete messages (source ``devicecontroller``, group ``resource``, ``header.resourceversion``)
keyed by UID through the hub's Downlink — acked like pods, resynced on reconnect from persisted ack state
(ObjectSync entries labelled ``kedge.io/ack-state=devices``) — and, before them, an unacknowledged
membership update (group ``twin``, resource ``membership``, ``added_devices``/``removed_devices`` with
id, name and description only). Moving a Device removes it from the old node.

Up: ``twin/edge_updated`` and ``state/update`` reports (rules in reports.py) are written to the Device's
DeviceStatus — only when the Device is bound to the sending node. Reports are coalesced per Device: one
merge patch in flight, later values merged over earlier ones, so the API lags by one write, not by the
device rate. ``upload`` messages (group ``user``, source ``bus``) are counted until routing rules exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from runtime.backoff import backoff
from runtime.cloud.controllers.syncstore import SyncStore
from runtime.cloud.devices.reports import (
    BadReport,
    body_of,
    parse_upstream,
    state_change,
    twin_changes,
)
from runtime.cloud.devices.status_objects import DeviceStatuses
from runtime.cloud.devices.world import DeviceWorld, Obj, device_id, meta, node_of
from runtime.cloud.hub.session import LogOnce, SessionInfo
from runtime.kube.client import KubeClient
from runtime.kube.errors import Forbidden, KubeNotFound
from runtime.kube.resources import DEVICEMODELS, DEVICES, Res
from runtime.kube.watch import watch_with_resume
from runtime.protocol import (
    ACK_CONTENT,
    GROUP_RESOURCE,
    GROUP_TWIN,
    OP_DELETE,
    OP_INSERT,
    OP_UPDATE,
    RT_DEVICE,
    RT_DEVICEMODEL,
    SRC_DEVICECONTROLLER,
    Message,
    new_message,
    now_ms,
    parse_resource,
    response_to,
    strip_node_prefix,
)
from runtime.protocol.delivery import (
    Acked,
    AckEntry,
    AckState,
    Current,
    Downlink,
    SyncAction,
    plan_resync,
    resync_steps,
)
from runtime.tasks import cancel_all, supervise

log = logging.getLogger("kedge.cloud.devicecontroller")

WATCHES: tuple[tuple[str, Res], ...] = (("DeviceModel", DEVICEMODELS), ("Device", DEVICES))
OP_UPLOAD = "upload"
MEMBERSHIP = "membership"
ACK_OWNER = "devices"  # the kedge.io/ack-state label value of this controller's ObjectSyncs
_RANK = {RT_DEVICEMODEL: 0, RT_DEVICE: 1}  # models before the devices that use them; deleted after


class Hub(Protocol):
    """What the controller needs of the CloudHub (runtime/cloud/hub/server.py)."""

    async def send(
        self, node: str, msg: Message, *, reliable_key: str | None = None, wait: float | None = None
    ) -> bool: ...

    def connected(self, node: str) -> bool: ...

    def downlink(self, node: str) -> Downlink: ...


def _type(resource: str) -> str:
    r = parse_resource(resource)
    return r.type if r else ""


def _order(op: str, resource: str) -> tuple[int, int]:
    rank = _RANK.get(_type(resource), 2)
    return (0, -rank) if op == OP_DELETE else (1, rank)


def membership_entry(device: Obj) -> dict[str, str]:
    """A membership update's device: id, name and (when there is one) description, nothing else."""
    m = meta(device)
    entry = {"id": device_id(device), "name": str(m.get("name") or "")}
    desc = (device.get("spec") or {}).get("description") or (m.get("annotations") or {}).get("description")
    if desc:
        entry["description"] = str(desc)
    return entry


def membership_message(added: list[Obj], removed: list[Obj]) -> Message:
    content = {
        "event_id": str(uuid.uuid4()),
        "timestamp": now_ms(),
        "added_devices": [membership_entry(d) for d in added] or None,
        "removed_devices": [membership_entry(d) for d in removed] or None,
    }
    return new_message(SRC_DEVICECONTROLLER, GROUP_TWIN, OP_UPDATE, MEMBERSHIP, content)


class DeviceMetrics(Collector):
    """The controller's counters as ``kedge_cloud_devices_total{event=…}`` (uploads, reports, refused …)."""

    def __init__(self, counters: Mapping[str, int]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        fam = CounterMetricFamily("kedge_cloud_devices", "Device controller events by kind", labels=["event"])
        for name, value in sorted(self.counters.items()):
            fam.add_metric([name], value)
        yield fam


class DeviceController:
    """Wired by runtime/cloud/cloudcore.py with the API client, the hub and (optionally) an ack-state store;
    the hub's ``subscribe`` gets ``on_message``/``on_connect``/``on_disconnect``/``on_ack``."""

    def __init__(
        self,
        client: KubeClient,
        hub: Hub,
        *,
        store: SyncStore | None = None,
        registry: CollectorRegistry | None = None,
        retry_cap: float = 30.0,
    ) -> None:
        self.client, self.hub, self.store = client, hub, store
        self.world = DeviceWorld()
        self.acks = AckState()
        self.synced = asyncio.Event()
        self.retry_cap = retry_cap
        self.sent: dict[str, dict[str, tuple[str, str, Obj]]] = {}  # node -> uid -> (resource, rv, obj)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listed: set[str] = set()
        self._log = LogOnce()  # refused or malformed reports: said once a minute per node, then counted
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.statuses = DeviceStatuses(client, self.world, self.counters, retry_cap)
        if registry is not None:
            registry.register(DeviceMetrics(self.counters))

    # --- root task ---------------------------------------------------------------------------------

    async def run(self) -> None:
        if self.store is not None:
            try:
                self.acks = await self.store.load()
            except KubeNotFound:
                log.warning("ObjectSync CRD not installed: device ack state is kept in memory only")
                self.store = None
        tasks = [asyncio.create_task(self._watch(k, r), name=f"watch-{r.plural}") for k, r in WATCHES]
        if self.store is not None:
            tasks.append(asyncio.create_task(self.store.run(self.acks), name="device-ack-flush"))
            follow = self.store.follow(self.acks, self.hub.connected)  # other replicas' nodes
            tasks.append(asyncio.create_task(follow, name="device-ack-follow"))
        try:
            await supervise(tasks)
        finally:
            await cancel_all([*self._tasks, *self.statuses.tasks()])
            if self.store is not None:
                await self.store.flush(self.acks)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self, kind: str, res: Res) -> None:
        said, delays = False, backoff(initial=1.0, cap=self.retry_cap)
        while True:
            try:
                await self._watch_once(kind, res)
            except (KubeNotFound, Forbidden) as exc:
                # CRDs not installed, or RBAC without the device rules (an older install): the device
                # plane waits — say it once, look again now and then — and the rest of the cloud runs
                if not said:
                    log.warning(
                        "%s (devices.kubeedge.io) cannot be watched: devices are not served until it "
                        "can (`kedge init` installs the CRDs and RBAC): %s",
                        kind,
                        exc,
                    )
                    said = True
                await asyncio.sleep(next(delays))

    async def _watch_once(self, kind: str, res: Res) -> None:
        async for event, obj in watch_with_resume(self.client, res):
            if event == "LISTED":
                self._listed.add(kind)
                if len(self._listed) == len(WATCHES) and not self.synced.is_set():
                    self.synced.set()
                    log.info("device controller synced: %d devices", len(self.world.devices))
                    for dev in list(self.world.devices.values()):
                        self._spawn(self.statuses.ensure_quietly(dev))
                    for node in list(self.sent):
                        await self.resync(node)
                continue
            assert obj is not None
            touched = self.world.apply(kind, event, obj)
            if kind == "Device" and self.synced.is_set():
                if event == "DELETED":
                    self._spawn(self.statuses.remove(obj))
                else:
                    self._spawn(self.statuses.ensure_quietly(obj))
            if self.synced.is_set():
                for node in touched:
                    await self.reconcile(node)

    # --- down: objects and membership --------------------------------------------------------------

    async def _send(self, node: str, op: str, key: str, resource: str, rv: str, obj: Any) -> None:
        msg = new_message(SRC_DEVICECONTROLLER, GROUP_RESOURCE, op, resource, obj, resourceversion=rv)
        await self.hub.send(node, msg, reliable_key=key)
        self.counters["messagesSent"] += 1

    async def _membership(self, node: str, added: list[Obj], removed: list[Obj]) -> None:
        if added or removed:
            await self.hub.send(node, membership_message(added, removed))
            self.counters["membershipUpdates"] += 1

    async def _apply(self, node: str, steps: list[SyncAction]) -> None:
        added = [a.obj for a in steps if a.operation == OP_INSERT and _type(a.resource) == RT_DEVICE]
        removed = [a.obj for a in steps if a.operation == OP_DELETE and _type(a.resource) == RT_DEVICE]
        await self._membership(node, added, removed)
        for a in sorted(steps, key=lambda a: _order(a.operation, a.resource)):
            await self._send(node, a.operation, a.key, a.resource, a.rv, a.obj)

    async def reconcile(self, node: str) -> None:
        """A watch event touched ``node``: send it the difference from what it was last told."""
        prev = self.sent.get(node)
        if prev is None or not self.hub.connected(node):
            return  # offline: the resync on its next connect covers it
        desired = self.world.desired(node)
        steps = plan_resync(desired, {uid: AckEntry(res, rv) for uid, (res, rv, _) in prev.items()})
        # a device gone or moved away: the delete carries the last object sent (as cloudcore's does)
        steps = [replace(a, obj=prev[a.key][2]) if a.operation == OP_DELETE else a for a in steps]
        self.sent[node] = {uid: (c.resource, c.rv, c.obj) for uid, c in desired.items()}
        await self._apply(node, steps)

    async def resync(self, node: str) -> None:
        """Send ``node`` what changed since its last acknowledgements (nothing already pending)."""
        desired: dict[str, Current] = self.world.desired(node)
        link = self.hub.downlink(node)
        pending = {k: m for k, m in link.pending() if _type(m.resource) in _RANK}
        steps = resync_steps(desired, self.acks.for_node(node), pending)
        self.sent[node] = {uid: (c.resource, c.rv, c.obj) for uid, c in desired.items()}
        await self._apply(node, steps)
        if steps:
            log.info("edge %s: device resync sent %d message(s)", node, len(steps))

    # --- hub callbacks -----------------------------------------------------------------------------

    async def on_connect(self, info: SessionInfo) -> None:
        node = info.node
        before = set(self.acks.for_node(node))
        known = self.acks.epochs.get(node)
        if self.acks.observe_epoch(node, info.epoch):
            link = self.hub.downlink(node)
            link.forget([k for k, m in link.pending() if _type(m.resource) in _RANK])
            if self.store is not None:
                self.store.mark_node(self.acks, node, {AckState.name(node, u) for u in before})
        elif info.epoch and known != info.epoch and self.store is not None:
            self.store.mark_epoch(node)
        self.sent[node] = {}
        if self.synced.is_set():
            await self.resync(node)

    async def on_disconnect(self, info: SessionInfo) -> None:
        self.sent.pop(info.node, None)

    async def on_ack(self, node: str, ev: Acked) -> None:
        if _type(ev.resource) not in _RANK:
            return  # the edge controller's
        self.acks.apply(node, ev)
        if self.store is not None:
            self.store.mark(node, ev.key)

    async def on_message(self, node: str, msg: Message) -> None:
        owner, rest = strip_node_prefix(msg.resource)
        if owner is not None and owner != node:
            return
        if msg.operation == OP_UPLOAD:
            self.counters["uploads"] += 1
            return
        found = parse_upstream(rest)
        if found is None:
            return
        kind, dev_id = found
        # received (cloudcore answers edge_updated "OK" too); whether it is used is the cloud's business
        await self.hub.send(node, response_to(msg, ACK_CONTENT, source=SRC_DEVICECONTROLLER))
        if not self.synced.is_set():
            await asyncio.wait_for(self.synced.wait(), 60)
        dev = self.world.device(dev_id)
        if dev is None:
            self.counters["reportsUnknownDevice"] += 1
            log.debug("edge %s: report for unknown device %s dropped", node, dev_id)
            return
        if node_of(dev) != node:
            self.counters["reportsRefused"] += 1
            self._log.warning(
                f"refused:{node}",
                f"edge {node}: refused a {kind} report for device {dev_id} bound to {node_of(dev)!r}",
                time.monotonic(),
            )
            return
        try:
            body = body_of(msg.content)
            if kind == "twin":
                changes, ignored = twin_changes(dev, body)
                self.counters["propertiesIgnored"] += ignored
                report: dict[str, Any] = {"twins": changes} if changes else {}
            else:
                report = {"state": state_change(body)}
        except BadReport as exc:
            self.counters["reportsMalformed"] += 1
            self._log.warning(
                f"malformed:{node}",
                f"edge {node}: {kind} report for {dev_id} not used: {exc}",
                time.monotonic(),
            )
            return
        if report:
            self.counters["reports"] += 1
            self.statuses.queue(dev, report)

    def status(self) -> dict[str, Any]:
        return {
            "synced": self.synced.is_set(),
            "devices": len(self.world.devices),
            "models": len(self.world.models),
            "counters": dict(self.counters),
            "at": time.time(),
        }
