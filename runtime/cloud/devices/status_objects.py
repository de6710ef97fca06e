"""DeviceStatus objects: one per Device (same name, owned by it), created when it appears, removed with it,
and written from the edge's reports — coalesced per Device, one merge patch in flight, so the API lags
by one write whatever the device rate. A failed write keeps the report (newer values merged over it)
and retries with backoff; reports for a Device that went away are dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from typing import Any

from runtime.backoff import backoff
from runtime.cloud.devices.reports import Twin, merge_changes, merged_twins, owner_uid, status_object
from runtime.cloud.devices.world import DeviceWorld, Obj, device_id, meta, uid_of
from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeNotFound
from runtime.kube.resources import DEVICESTATUSES

log = logging.getLogger("kedge.cloud.devicecontroller")


class DeviceStatuses:
    """The DeviceStatus side of the Device controller; ``counters`` is the controller's."""

    def __init__(
        self,
        client: KubeClient,
        world: DeviceWorld,
        counters: defaultdict[str, int],
        retry_cap: float = 30.0,
        concurrency: int = 16,
    ) -> None:
        self.client, self.world, self.counters, self.retry_cap = client, world, counters, retry_cap
        self.known: dict[str, Obj] = {}  # device uid -> its DeviceStatus as last read or written
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # per device uid
        self._pending: dict[str, dict[str, Any]] = {}  # device uid -> coalesced report not yet written
        self._writers: dict[str, asyncio.Task[None]] = {}
        # API calls in flight at most: a cloud starting with thousands of Devices checks each one's
        # DeviceStatus without queueing thousands of requests in the HTTP client's pool
        self._api = asyncio.Semaphore(concurrency)

    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._writers.values())

    def queue(self, dev: Obj, report: dict[str, Any]) -> None:
        uid = uid_of(dev)
        old = self._pending.get(uid)
        if old is None:
            self._pending[uid] = report
        else:
            self.counters["reportsCoalesced"] += 1
            if "twins" in report:
                old["twins"] = merge_changes(old.get("twins") or {}, report["twins"])
            if "state" in report:
                old["state"] = {**(old.get("state") or {}), **report["state"]}
        if uid not in self._writers:
            task = asyncio.create_task(self._writer(uid), name=f"devicestatus-{uid}")
            self._writers[uid] = task
            task.add_done_callback(functools.partial(self._writer_done, uid))

    def _writer_done(self, uid: str, _task: asyncio.Task[None]) -> None:
        self._writers.pop(uid, None)

    async def _writer(self, uid: str) -> None:
        delays = backoff(initial=0.2, cap=self.retry_cap)
        while uid in self._pending:
            dev = self.world.devices.get(uid)
            if dev is None:
                self._pending.pop(uid, None)
                return
            report = self._pending.pop(uid)
            try:
                await self._write(dev, report)
                delays = backoff(initial=0.2, cap=self.retry_cap)
            except Exception as exc:  # the API failed: keep the report (newer values over it) and retry
                self.counters["statusWriteErrors"] += 1
                newer = self._pending.pop(uid, {})
                self._pending[uid] = report
                if newer:
                    self.queue(dev, newer)
                log.warning("DeviceStatus %s: write failed, retrying: %s", device_id(dev), exc)
                await asyncio.sleep(next(delays))

    async def _write(self, dev: Obj, report: dict[str, Any]) -> None:
        uid = uid_of(dev)
        status = await self.ensure(dev)
        patch: dict[str, Any] = {}
        if "twins" in report:
            current = (status.get("status") or {}).get("twins") or []
            changes: dict[str, Twin] = report["twins"]
            patch["twins"] = merged_twins(dev, current, changes)
        if "state" in report:
            patch.update(report["state"])
        m = meta(dev)
        async with self._locks[uid], self._api:
            out = await self.client.patch(
                DEVICESTATUSES, str(m.get("name")), {"status": patch}, namespace=str(m.get("namespace"))
            )
        if uid in self.world.devices:
            self.known[uid] = out
        self.counters["statusWrites"] += 1

    async def ensure(self, dev: Obj) -> Obj:
        """The Device's DeviceStatus, created when missing (one owned by an older Device of the same
        name is replaced)."""
        uid = uid_of(dev)
        m = meta(dev)
        name, ns = str(m.get("name")), str(m.get("namespace"))
        delays = backoff(initial=0.2, cap=self.retry_cap)
        while True:
            async with self._locks[uid], self._api:
                have = self.known.get(uid)
                if have is not None:
                    return have
                if uid not in self.world.devices:
                    raise KubeNotFound(f"Device {ns}/{name} is gone")
                try:
                    return await self._get_or_create(dev, name, ns)
                except KubeNotFound:
                    raise
                except Exception as exc:
                    self.counters["statusWriteErrors"] += 1
                    log.warning("DeviceStatus %s/%s: %s (retrying)", ns, name, exc)
            await asyncio.sleep(next(delays))

    async def ensure_quietly(self, dev: Obj) -> None:
        try:
            await self.ensure(dev)
        except KubeNotFound as exc:  # the Device (or its namespace) went away meanwhile
            log.debug("DeviceStatus for %s not created: %s", device_id(dev), exc)

    async def _get_or_create(self, dev: Obj, name: str, ns: str) -> Obj:
        uid = uid_of(dev)
        try:
            cur: Obj | None = await self.client.get(DEVICESTATUSES, name, namespace=ns)
        except KubeNotFound:
            cur = None
        if cur is not None and owner_uid(cur) != uid:
            log.info("DeviceStatus %s/%s belongs to another Device (%s): replaced", ns, name, owner_uid(cur))
            try:
                await self.client.delete(DEVICESTATUSES, name, namespace=ns, uid=uid_of(cur))
            except KubeNotFound:
                pass
            cur = None
        if cur is None:
            try:
                cur = await self.client.create(DEVICESTATUSES, status_object(dev), namespace=ns)
                self.counters["statusCreated"] += 1
            except AlreadyExists:
                cur = await self.client.get(DEVICESTATUSES, name, namespace=ns)
        self.known[uid] = cur
        return cur

    async def remove(self, dev: Obj) -> None:
        """The Device is gone: its DeviceStatus goes too (only the one it owned)."""
        uid = uid_of(dev)
        m = meta(dev)
        name, ns = str(m.get("name")), str(m.get("namespace"))
        self._pending.pop(uid, None)
        async with self._locks[uid], self._api:
            # the one we know (no read), else read it; a UID precondition never deletes a newer one
            cur = self.known.pop(uid, None)
            try:
                if cur is None:
                    cur = await self.client.get(DEVICESTATUSES, name, namespace=ns)
                if owner_uid(cur) == uid:
                    await self.client.delete(DEVICESTATUSES, name, namespace=ns, uid=uid_of(cur))
                    self.counters["statusDeleted"] += 1
            except KubeNotFound:
                pass
            except Exception as exc:  # garbage collection removes it anyway (ownerReference)
                log.warning("DeviceStatus %s/%s: delete failed: %s", ns, name, exc)
        self._locks.pop(uid, None)
