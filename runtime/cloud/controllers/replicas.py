"""Several `kedge cloud run` replicas on one cluster: each holds a Lease of its own in the cloud's
namespace; when one's Lease expires, a live replica takes over that replica's nodes (their lease
renewals and disconnect marks, via ``on_orphan``) and deletes the dead Lease. Singleton work runs on
the live replica whose identity sorts first (``is_leader``) — no election traffic beyond the Leases.
A stopping replica leaves its Lease to expire on purpose: deleting it would hide its nodes from takeover.
The identity is stable per host and root (``default_identity``): a `kedge cloud run` restarted under the
same root is its predecessor, renews the same Lease and resumes its nodes at once (CloudControllers)
instead of waiting for the old Lease to expire and taking them over as a stranger's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeConflict, KubeNotFound
from runtime.kube.resources import LEASES

log = logging.getLogger("kedge.cloud.replicas")

LABEL = "kedge.io/cloud-replica"
PREFIX = "kedge-cloud-"


def default_identity(root: Path | None = None) -> str:
    """$KEDGE_REPLICA_ID, else <hostname>-<hash of the resolved root>: the same for a restarted process,
    distinct for two clouds on one host (different roots; a pod name is unique anyway). Without a root,
    <hostname>-<pid>-<random>."""
    explicit = os.environ.get("KEDGE_REPLICA_ID")
    if explicit:
        return _clean(explicit)[: 63 - len(PREFIX)].strip("-") or uuid.uuid4().hex[:12]
    if root is not None:
        suffix = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:10]
    else:
        suffix = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    host = _clean(socket.gethostname())[: 63 - len(PREFIX) - len(suffix) - 1].strip("-")
    return f"{host}-{suffix}" if host else suffix


def _clean(raw: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(text)[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=dt.UTC)
    except ValueError:
        try:
            return dt.datetime.strptime(str(text)[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        except ValueError:
            return None


OnOrphan = Callable[[str], Awaitable[None]]


class Replicas:
    """This replica's Lease, the live set, leadership, and takeover of expired peers."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        identity: str | None = None,
        *,
        duration: float = 15.0,
        renew_every: float = 5.0,
    ) -> None:
        self.client, self.namespace = client, namespace
        self.identity = identity or default_identity()
        self.duration, self.renew_every = duration, renew_every
        self.live: list[str] = [self.identity]
        self.taken_over: list[str] = []
        self.observed = False  # the live set was listed at least once: leadership is known
        self._lease: dict[str, Any] | None = None

    @property
    def lease_name(self) -> str:
        return PREFIX + self.identity

    def is_leader(self) -> bool:
        """True on the live replica whose identity sorts first — never before the peers were listed."""
        return self.observed and bool(self.live) and min(self.live) == self.identity

    async def run(self, on_orphan: OnOrphan) -> None:
        while True:
            try:
                await self.step(on_orphan)
            except Exception as exc:  # an API hiccup must not stop the renewals
                log.warning("replica lease: %s", exc)
            await asyncio.sleep(self.renew_every)

    async def step(self, on_orphan: OnOrphan) -> None:
        await self.renew()
        now = dt.datetime.now(dt.UTC)
        found = await self.client.list(LEASES, namespace=self.namespace, labels={LABEL: "true"})
        live, expired = [self.identity], []
        for lease in found.items:
            spec = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            if not holder or holder == self.identity:
                continue
            renewed = _parse(spec.get("renewTime"))
            ttl = float(spec.get("leaseDurationSeconds") or self.duration)
            if renewed is not None and (now - renewed).total_seconds() <= ttl:
                live.append(holder)
            else:
                expired.append((holder, lease))
        # Leadership moves first: singleton work must not wait for the (slow) takeover of nodes.
        self.live = sorted(live)
        self.observed = True
        for holder, lease in expired:
            log.warning("cloud replica %s: lease expired; taking over its nodes", holder)
            await on_orphan(holder)
            self.taken_over.append(holder)
            m = lease.get("metadata") or {}
            try:
                await self.client.delete(
                    LEASES, m["name"], namespace=self.namespace, resource_version=m.get("resourceVersion")
                )
            except (KubeNotFound, KubeConflict):
                pass  # another replica got there first, or it came back

    async def renew(self) -> None:
        now = _ts(dt.datetime.now(dt.UTC))
        if self._lease is not None:
            self._lease["spec"]["renewTime"] = now
            try:
                self._lease = await self.client.replace(LEASES, self._lease, namespace=self.namespace)
                return
            except (KubeConflict, KubeNotFound):
                self._lease = None
        body = {
            "metadata": {"name": self.lease_name, "namespace": self.namespace, "labels": {LABEL: "true"}},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": now,
                "renewTime": now,
            },
        }
        try:
            self._lease = await self.client.create(LEASES, body, namespace=self.namespace)
        except AlreadyExists:
            cur = await self.client.get(LEASES, self.lease_name, namespace=self.namespace)
            cur["spec"].update(holderIdentity=self.identity, renewTime=now)
            self._lease = await self.client.replace(LEASES, cur, namespace=self.namespace)
