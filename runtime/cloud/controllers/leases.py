"""The cloud's writes of held kedge nodes' Leases (kube-node-lease), and the last Ready carried on them.

Why the Lease carries the edge's last reported Ready (annotation ``node.kedge.io/last-ready``): a kedge
edge re-sends only changes, and the node-lifecycle controller overwrites Ready with Unknown while the
cloud is away, so the only record of the last report is the cloud's memory (World.last_ready), which a
restart loses. The cloud writes the Lease every renewal anyway: the annotation rides in that same merge
PATCH when the report changed (no extra write; the steady-state body stays the fixed renewTime one),
and a cloud without the memory reads it back for the nodes it finds Unknown (ReadyRestorer).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from typing import Any

from runtime.cloud.controllers.world import World, meta
from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeNotFound
from runtime.kube.leanhttp import LeanHTTP
from runtime.kube.resources import LEASES

log = logging.getLogger("kedge.cloud.nodecontroller")

LEASE_NS = "kube-node-lease"
LEASE_PATH = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases"
ANN_LAST_READY = "node.kedge.io/last-ready"
READY_FIELDS = ("status", "reason", "message")
Note = tuple[str, ...]  # (status, reason, message) of a Ready condition


def note_of(cond: dict[str, Any]) -> Note:
    return tuple(str(cond.get(k) or "") for k in READY_FIELDS)


def note_text(note: Note) -> str:
    """Compact JSON, empty fields left out: ``{"status":"True","reason":"EdgeReady","message":"…"}``."""
    return json.dumps({k: v for k, v in zip(READY_FIELDS, note, strict=True) if v}, separators=(",", ":"))


def ready_from_text(text: Any) -> dict[str, str] | None:
    """The Ready condition an annotation value describes; None for anything malformed."""
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("status") not in ("True", "False", "Unknown"):
        return None
    return {"type": "Ready", **{k: data[k] for k in READY_FIELDS if isinstance(data.get(k), str)}}


def now_rfc3339(micro: bool = False) -> str:
    t = dt.datetime.now(dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeLeases:
    """Lease renewals (merge PATCH, created when missing) through a few keep-alive connections
    (runtime/kube/leanhttp.py), the general client when the kubeconfig is unusual for it."""

    def __init__(self, client: KubeClient, world: World, *, lease_seconds: int = 40) -> None:
        self.client, self.world, self.lease_seconds = client, world, lease_seconds
        self.http: LeanHTTP | None = None
        self.writes = 0
        self.notes = 0  # of those writes, how many carried a changed last Ready
        self._noted: dict[str, Note] = {}  # node -> the last Ready its Lease carries (written or read)

    def open(self, connections: int) -> None:
        if self.http is None:
            try:
                self.http = LeanHTTP.for_client(self.client, connections=connections)
            except Exception as exc:  # an unusual kubeconfig: the general client still works
                log.warning("lease renewals through the general API client (%s)", exc)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None

    def forget(self, node: str) -> None:
        self._noted.pop(node, None)

    def _changed(self, node: str) -> Note | None:
        """The edge's last reported Ready when the Lease does not carry it yet, else None."""
        cond = self.world.last_ready.get(node)
        if cond is None:
            return None
        note = note_of(cond)
        return None if self._noted.get(node) == note else note

    async def renew(self, node: str) -> None:
        """renewTime by merge PATCH (no read, no resourceVersion to keep), plus the last-ready annotation
        when the report changed; a missing Lease is created."""
        now = now_rfc3339(micro=True)
        note = self._changed(node)
        try:
            if self.http is not None:
                if note is None:
                    body = b'{"spec":{"renewTime":"%s"}}' % now.encode()
                else:
                    ann = json.dumps({ANN_LAST_READY: note_text(note)})
                    body = b'{"metadata":{"annotations":%s},"spec":{"renewTime":"%s"}}' % (
                        ann.encode(),
                        now.encode(),
                    )
                await self.http.patch(f"{LEASE_PATH}/{node}", body)
            else:
                patch: dict[str, Any] = {"spec": {"renewTime": now}}
                if note is not None:
                    patch["metadata"] = {"annotations": {ANN_LAST_READY: note_text(note)}}
                await self.client.patch(LEASES, node, patch, namespace=LEASE_NS)
            self.writes += 1
        except KubeNotFound:
            await self._create(node, now, note)
            return
        if note is not None:
            self._noted[node] = note
            self.notes += 1

    async def _create(self, node: str, now: str, note: Note | None) -> None:
        n = self.world.nodes.get(node)
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": node, "namespace": LEASE_NS},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": self.lease_seconds, "renewTime": now},
        }
        if n is not None and meta(n).get("uid"):
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": node, "uid": meta(n)["uid"]}
            ]
        if note is not None:
            body["metadata"]["annotations"] = {ANN_LAST_READY: note_text(note)}
        with contextlib.suppress(AlreadyExists):  # created meanwhile (by the edge): fine
            if self.http is not None:
                await self.http.create(LEASE_PATH, json.dumps(body).encode())
            else:
                await self.client.create(LEASES, body, namespace=LEASE_NS)
            self.writes += 1
            if note is not None:
                self._noted[node] = note
                self.notes += 1

    async def recall(self, node: str) -> bool:
        """Seed World.last_ready from the Lease's annotation (a cloud that started after the report);
        True when it did. One GET, made only for a node found Unknown with nothing remembered."""
        try:
            lease = await self.client.get(LEASES, node, namespace=LEASE_NS)
        except KubeNotFound:
            return False
        cond = ready_from_text((meta(lease).get("annotations") or {}).get(ANN_LAST_READY))
        if cond is None or node in self.world.last_ready or node not in self.world.nodes:
            return False  # nothing carried, or a report (or a deletion) came meanwhile
        self.world.last_ready[node] = cond
        self._noted[node] = note_of(cond)
        return True
