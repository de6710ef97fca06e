"""Node registration, status and (for KubeEdge clouds) the Lease — the edge acting as its kubelet.

Sequence, as a real edgecore did it (capture seq 3-28): register with ``insert null/node/<n>`` (a 409
AlreadyExists answer means "registered before" and is fine), then send status as ``patch
null/nodepatch/<n>`` whose content is a JSON *string* holding a strategic-merge patch — only the
fields that changed plus every condition's heartbeat — on change and at least every
``report_every`` seconds. With a KubeEdge cloudcore the edge also keeps its Lease: query, create on
404, then update every 10 s with the object the last response returned. A kedge cloud (announced by
the ``X-Kedge-Version`` upgrade header) renews the Lease itself from session liveness, so no lease
traffic is sent to it (design.md §4 "Liveness and leases").

What a report diffs against is the Node the cloud holds, as kubelet diffs against the Node it reads
every 10 s: the copy the cloud pushes (cached by the agent, handed over with ``cloud_node``) or the
Node a registration or status patch returned, whichever came last. So a Node the real node-lifecycle
controller set Ready=Unknown while the edge was away gets Ready=True back at the next check (and
the controller lifts its unreachable taint) — a diff against what the edge last sent would see no
change and leave the node NotReady.

A Node deleted in the cloud (``kubectl delete node``: its delete pushed, a status patch answered 404,
or no Node behind a Lease that vanished) ends this edge's acting for that UID: no more Lease or status
traffic with a dead ownerReference. ``state()["removed"]`` says so; the next start registers a new
Node (kubelet does the same), and ``on_registered`` is then told, so pods cached for the old Node
are not kept running.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from runtime.backoff import backoff
from runtime.edge import nodeinfo
from runtime.edge.events import Recorder
from runtime.edge.link import Hub
from runtime.edge.nodeevents import node_events
from runtime.errors import KedgeError
from runtime.protocol import (
    GROUP_META,
    OP_INSERT,
    OP_PATCH,
    OP_QUERY,
    OP_UPDATE,
    SRC_EDGED,
    new_message,
    split_result,
)

log = logging.getLogger("kedge.edge.node")
LEASE_NS = "kube-node-lease"
LEASE_SECONDS = 40
STATUS_FIELDS = ("capacity", "allocatable", "addresses", "daemonEndpoints", "nodeInfo")
# What a kedge cloud may write over the edge's report: the address and port API servers dial for logs
# and exec (the cloud's [kubelet_endpoint], docs/streams.md). The edge still reports its own, but diffs
# them against what it last sent, never against the cloud's copy: an override is not a change to undo.
CLOUD_SET = ("addresses", "daemonEndpoints")


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """The nodepatch content: a JSON string, strategic merge, as edgecore writes it (seq 13).

    Conditions are merged by type with ``$setElementOrder``; each carries its heartbeat and, when it
    changed, its status/reason/message/transition time. Other status fields appear only when changed.
    """
    status: dict[str, Any] = {}
    prev = {c["type"]: c for c in (old or {}).get("conditions", [])}
    conds = []
    for c in new["conditions"]:
        p = prev.get(c["type"], {})
        entry = {k: v for k, v in c.items() if k != "type" and p.get(k) != v}
        entry["type"] = c["type"]
        conds.append(dict(sorted(entry.items())))
    status["$setElementOrder/conditions"] = [{"type": c["type"]} for c in new["conditions"]]
    status["conditions"] = conds
    for key in STATUS_FIELDS:
        if old is None or old.get(key) != new.get(key):
            status[key] = new[key]
    return json.dumps({"status": status}, separators=(",", ":"))


def with_sent(base: dict[str, Any] | None, sent: dict[str, Any] | None) -> dict[str, Any] | None:
    """The cloud's copy with the CLOUD_SET fields as this edge last sent them (the base of a diff)."""
    if base is None or sent is None:
        return base
    return {**base, **{k: sent[k] for k in CLOUD_SET if k in sent}}


def _ready(node: Any) -> bool | None:
    if not isinstance(node, dict):
        return None
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return None


def _uid(node: Any) -> str:
    return str(((node or {}).get("metadata") or {}).get("uid") or "") if isinstance(node, dict) else ""


def _changed(base: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether ``new`` differs from ``base`` in what this edge owns: the status fields and the status
    of its own condition types (a cloud's extra conditions, e.g. kedge's EdgeConnected, are not ours)."""
    if base is None:
        return True
    if any(base.get(k) != new.get(k) for k in STATUS_FIELDS):
        return True
    held = {c.get("type"): c.get("status") for c in base.get("conditions") or []}
    return any(held.get(c["type"]) != c["status"] for c in new["conditions"])


def _micro(ts: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if ts is None else ts, dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


class NodeStatus:
    """Registration + status + lease loop for one node. ``state()`` feeds `kedge status`."""

    def __init__(
        self,
        hub: Hub,
        name: str,
        *,
        state_dir: Path,
        ip: str = "",
        labels: dict[str, str] | None = None,
        taints: list[str] | None = None,
        with_edge_taint: bool = False,
        runtime_version: Callable[[], str] = lambda: "",
        runtime_down: Callable[[], str] = lambda: "",
        check_every: float = 10.0,
        report_every: float = 300.0,
        lease_every: float = 10.0,
        request_timeout: float = 15.0,
        cached_node: Callable[[], Any] | None = None,
        on_registered: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
        events: Recorder | None = None,
    ) -> None:
        self.hub, self.name, self.state_dir = hub, name, state_dir
        self.ip = ip or nodeinfo.node_ip()
        self.labels, self.taints, self.with_edge_taint = labels or {}, taints or [], with_edge_taint
        self.runtime_version, self.runtime_down = runtime_version, runtime_down
        self._poked = asyncio.Event()
        self.check_every, self.report_every, self.lease_every = check_every, report_every, lease_every
        self.request_timeout = request_timeout
        self.cached_node = cached_node
        self.on_registered = on_registered
        self.events = events
        self.registered = False
        self.removed = ""  # why this edge stopped acting for its Node (deleted in the cloud)
        self.node_uid = ""
        self.ready_in_cloud: bool | None = None
        self.last_report: float | None = None
        self.last_error = ""
        self.lease: dict[str, Any] | None = None
        self.lease_renewed: float | None = None
        self._sent: dict[str, Any] | None = None  # the status last accepted by the cloud
        self._cloud: dict[str, Any] | None = None  # the Node the cloud holds, as last seen
        self.unschedulable = False  # spec.unschedulable as last seen (kubelet's lastNodeUnschedulable)

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "registered": self.registered,
            "ready": self.ready_in_cloud,
            "uid": self.node_uid,
            "lastReport": self.last_report,
            "leaseRenewed": self.lease_renewed,
            "lastError": self.removed or self.last_error,
            "removed": bool(self.removed),
        }

    def facts(self) -> nodeinfo.Facts:
        version, down = self.runtime_version(), self.runtime_down()
        return nodeinfo.collect(self.state_dir, self.name, self.ip, version, down)

    def poke(self) -> None:
        """Check the status now, not at the next period (the container runtime went down or came back)."""
        self._poked.set()

    def cloud_node(self, node: Any, deleted: bool = False) -> None:
        """The cloud pushed our Node (the agent cached it): the base of the next status diff; a
        delete of the Node this edge registered ends its acting for it."""
        uid = _uid(node)
        if deleted:
            if self.registered and (not uid or not self.node_uid or uid == self.node_uid):
                self._remove("the cloud deleted it")
            return
        if isinstance(node, dict) and (not self.node_uid or not uid or uid == self.node_uid):
            self._cloud = node
            self._schedulable(bool((node.get("spec") or {}).get("unschedulable")))

    def _schedulable(self, unschedulable: bool) -> None:
        """kubelet's NodeSchedulable / NodeNotSchedulable: when spec.unschedulable (kubectl cordon /
        uncordon) differs from what it last saw (at start: schedulable)."""
        if unschedulable == self.unschedulable:
            return
        self.unschedulable = unschedulable
        if self.events is not None:
            reason = "NodeNotSchedulable" if unschedulable else "NodeSchedulable"
            self.events.node("Normal", reason, f"Node {self.name} status is now: {reason}")

    def _remove(self, why: str) -> None:
        if self.removed:
            return
        self.removed = (
            f"node {self.name} (uid {self.node_uid or '?'}) was removed from the cluster ({why}); this edge "
            "no longer acts for it — restart the edge to register the node again, or `kedge reset edge`"
        )
        self.lease = None
        log.warning("%s", self.removed)

    async def _request(self, op: str, resource: str, content: Any) -> tuple[Any, dict[str, Any] | None]:
        msg = new_message(SRC_EDGED, GROUP_META, op, resource, content)
        resp = await self.hub.request(msg, timeout=self.request_timeout)
        return split_result(resp.content)

    def _record(self, base: dict[str, Any] | None, new: dict[str, Any]) -> None:
        if self.events is not None:
            for type_, reason, message in node_events(self.name, base, new):
                self.events.node(type_, reason, message)

    async def register(self) -> None:
        if self._cloud is None and self.cached_node is not None:  # the copy cached before a restart
            cached = self.cached_node()
            cached = await cached if asyncio.iscoroutine(cached) else cached
            self._cloud = cached if isinstance(cached, dict) else None
        node = nodeinfo.build_node(
            self.name,
            self.facts(),
            labels=self.labels,
            taints=self.taints,
            with_edge_taint=self.with_edge_taint,
        )
        obj, err = await self._request(OP_INSERT, f"null/node/{self.name}", node)
        if err is not None and err.get("reason") != "AlreadyExists":
            raise KedgeError(f"node registration refused: {err.get('code')} {err.get('message')}")
        if err is None and isinstance(obj, dict):  # a new Node: nothing cached for an older one holds
            self.node_uid = _uid(obj)
            self._cloud = obj
            self._record(None, obj.get("status") or {})  # registered with its status: the first NodeReady
            if self.on_registered is not None:
                await self.on_registered(obj)
        elif err is None:
            self._cloud = None
        # AlreadyExists: the Node the cloud has is adopted as it is (kubelet does so); its uid comes
        # with the next answer that carries it — a cached copy may be of a Node deleted since
        self.registered = True
        log.info("node %s registered%s", self.name, " (already existed)" if err is not None else "")

    async def report(self, force: bool = False) -> bool:
        """Send a nodepatch if the status changed (or ``force``); True when one was accepted."""
        now = nodeinfo.rfc3339()
        held = (self._cloud or {}).get("status") if self._cloud is not None else self._sent
        base = held if isinstance(held, dict) and held.get("conditions") else self._sent
        new = nodeinfo.node_status(self.facts(), now, (base or {}).get("conditions"))
        # the periodic full report diffs against the cloud's copy: what someone else changed is restored
        ours = base if force else with_sent(base, self._sent)
        if not (_changed(ours, new) or force):
            return False
        obj, err = await self._request(OP_PATCH, f"null/nodepatch/{self.name}", status_patch(ours, new))
        if err is not None:
            if err.get("code") == 404:
                self._remove("its status patch found no Node")
            raise KedgeError(f"node status refused: {err.get('code')} {err.get('message')}")
        self._sent = new
        self._record(base, new)
        self.last_report = time.time()
        if isinstance(obj, dict):
            self._cloud = obj
            self.node_uid = _uid(obj) or self.node_uid
            ready = _ready(obj)
            self.ready_in_cloud = ready if ready is not None else True
        return True

    async def renew_lease(self) -> None:
        """One lease cycle as edgecore does it: query/create when unknown, else update."""
        res = f"{LEASE_NS}/lease/{self.name}"
        if self.lease is None:
            obj, err = await self._request(OP_QUERY, res, None)
            if err is None and isinstance(obj, dict):
                self.lease = obj
            elif err is not None and err.get("code") == 404:
                # the owner first, as kubelet's lease controller reads the Node: a Lease owned by a
                # deleted Node is garbage-collected at once, and recreating it would loop
                node, node_err = await self._request(OP_QUERY, f"null/node/{self.name}", None)
                if node_err is not None and node_err.get("code") == 404:
                    self._remove("no Node behind its missing Lease")
                    return
                if node_err is not None:
                    raise KedgeError(f"node query failed: {node_err.get('code')} {node_err.get('message')}")
                if _uid(node) and self.node_uid and _uid(node) != self.node_uid:
                    self._remove(f"a Node with another uid, {_uid(node)}, holds its name")
                    return
                self.node_uid = _uid(node) or self.node_uid
                meta: dict[str, Any] = {"name": self.name, "namespace": LEASE_NS, "creationTimestamp": None}
                if self.node_uid:
                    meta["ownerReferences"] = [
                        {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.node_uid}
                    ]
                lease = {
                    "metadata": meta,
                    "spec": {
                        "holderIdentity": self.name,
                        "leaseDurationSeconds": LEASE_SECONDS,
                        "renewTime": _micro(),
                    },
                }
                obj, err = await self._request(OP_INSERT, res, lease)
                if err is not None:
                    raise KedgeError(f"lease create refused: {err.get('code')} {err.get('message')}")
                self.lease = obj if isinstance(obj, dict) else lease
                self.lease_renewed = time.time()
                return
            else:
                raise KedgeError(f"lease query failed: {(err or {}).get('message')}")
        lease = dict(self.lease)
        lease["spec"] = dict(lease.get("spec") or {}, renewTime=_micro())
        obj, err = await self._request(OP_UPDATE, res, lease)
        if err is not None:
            self.lease = None  # conflict or gone: query again next cycle
            raise KedgeError(f"lease update refused: {err.get('code')} {err.get('message')}")
        self.lease = obj if isinstance(obj, dict) else lease
        self.lease_renewed = time.time()

    def _note(self, exc: Exception) -> None:
        text = str(exc)
        if text != self.last_error:
            log.warning("node %s: %s", self.name, text)
        self.last_error = text

    async def _wait_connected(self, stop: asyncio.Event) -> None:
        while not self.hub.connected and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: register once, then status every ``check_every`` s, lease for KubeEdge peers."""
        delays = backoff(0.5, cap=30.0)
        next_lease = 0.0
        while not stop.is_set():
            await self._wait_connected(stop)
            if stop.is_set():
                break
            if self.removed:
                await stop.wait()
                break
            try:
                kubeedge_peer = self.hub.status().get("peer_kind") == "kubeedge"
                if not self.registered:
                    await self.register()
                due = self.last_report is None or time.time() - self.last_report >= self.report_every
                await self.report(force=due)
                if kubeedge_peer and time.monotonic() >= next_lease:
                    next_lease = time.monotonic() + self.lease_every
                    await self.renew_lease()
                self.last_error = ""
                delays = backoff(0.5, cap=30.0)
                wait = self.check_every
            except (KedgeError, OSError) as exc:
                self._note(exc)
                wait = next(delays)
            wait = min(wait, max(0.05, next_lease - time.monotonic())) if next_lease else wait
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._poked.wait())]
            try:
                await asyncio.wait(waits, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            finally:  # cancelled too: no waiter left pending
                for f in waits:
                    f.cancel()
            self._poked.clear()
