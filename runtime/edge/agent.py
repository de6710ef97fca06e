"""The edge runtime's message handling: cache every cloud→edge object, ack after commit, drive pods.

Why here and not in the hub: the ack must follow the sqlite commit (design.md §4), and what an object
means (a pod to start, a ConfigMap to refresh) is the runtime's business, not the channel's. Pod work
that may take long (graceful deletes) runs in background tasks so the websocket reader never stalls.

Like edgecore, the agent stops reporting a pod once it is deleted (its delete arrived or the final
delete was sent): a late status of stopped containers is dropped, not patched onto a deleted pod.
Podpatches leave out ``qosClass``: the API server sets it at creation and owns it (kubelet's patch,
a diff against the server's status, never carries it). When the node registered anew (its Node had
been deleted), ``drop_stale_pods`` forgets the pods cached for the older Node and stops them — the
cloud deleted them with that Node (pod GC) and, holding no record of them, sends no delete.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from runtime.backoff import backoff
from runtime.edge.link import Hub
from runtime.edge.metastore import Change, MetaStore
from runtime.errors import KedgeError
from runtime.protocol import (
    GROUP_META,
    GROUP_TWIN,
    OP_DELETE,
    OP_INSERT,
    OP_PATCH,
    OP_UPDATE,
    SRC_DEVICECONTROLLER,
    SRC_EDGED,
    SRC_META,
    Message,
    ack,
    new_message,
    parse_resource,
    split_result,
)

log = logging.getLogger("kedge.edge.agent")
ACKED_OPS = (OP_INSERT, OP_UPDATE, OP_DELETE)


class Pods(Protocol):
    """The subset of runtime.edge.pods.PodManager the agent drives."""

    async def sync_pod(self, pod: dict[str, Any]) -> None: ...

    async def delete_pod(self, pod: dict[str, Any], grace: int | None = None) -> None: ...

    async def refresh_volumes(self, namespace: str | None = None) -> None: ...


def ack_for(msg: Message) -> Message:
    """edgecore acks device-controller messages as source meta, group twin (capture seq 93/95)."""
    if msg.source == SRC_DEVICECONTROLLER:
        return ack(msg, source=SRC_META, group=GROUP_TWIN)
    return ack(msg)


def podpatch(pod: dict[str, Any], status: dict[str, Any]) -> Message:
    """A pod status report as edgecore sends it: a JSON-string patch carrying the pod's UID (seq 31)."""
    meta = pod.get("metadata") or {}
    status = {k: v for k, v in status.items() if k != "qosClass"}  # the API server's, set at creation
    body = json.dumps({"metadata": {"uid": meta.get("uid", "")}, "status": status}, separators=(",", ":"))
    return new_message(
        SRC_EDGED,
        GROUP_META,
        OP_PATCH,
        f"{meta.get('namespace', 'default')}/podpatch/{meta.get('name', '')}",
        body,
    )


class Agent:
    """Handles what the cloud sends (``on_message``) and what the pods report (``on_pod_status``)."""

    def __init__(
        self, store: MetaStore, node: str, observe_sync: Callable[[float], None] | None = None
    ) -> None:
        self.store = store
        self.node = node
        self.observe_sync = observe_sync  # seconds one sync_pod took (the pod sync latency metric)
        self.hub: Hub | None = None
        self.pods: Pods | None = None
        self.devices: Callable[[Message], Awaitable[None]] | None = None  # the device plane's on_cloud
        self.applied = 0
        self.pod_seen = asyncio.Event()  # a pod arrived: the runtime starts the pod manager if idle
        self._terminating: set[str] = set()  # pod UIDs whose graceful delete is under way or done
        self._deleted: dict[str, None] = {}  # pod UIDs deleted (bounded, oldest dropped): no more reports
        self.on_node: Callable[[Any, bool], None] | None = None  # our Node pushed (deleted?) → NodeStatus
        self.last_applied: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _timed_sync(self, pods: Pods, pod: dict[str, Any]) -> None:
        start = time.monotonic()
        try:
            await pods.sync_pod(pod)
        finally:
            if self.observe_sync is not None:
                self.observe_sync(time.monotonic() - start)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %r", task.get_name(), task.exception())

    async def on_message(self, msg: Message) -> None:
        res = parse_resource(msg.resource)
        if msg.operation not in ACKED_OPS or res is None or not res.namespace or not res.name:
            log.debug("not cached: %s %s %s", msg.source, msg.operation, msg.resource)
            if msg.group == GROUP_TWIN and self.devices is not None:
                await self.devices(msg)  # twin membership updates (recorded without an ack)
            return
        change = await self.store.apply(msg)  # committed …
        assert self.hub is not None
        await self.hub.send(ack_for(msg))  # … then acked
        self.applied += 1
        self.last_applied = asyncio.get_running_loop().time()
        self._dispatch(change, msg)
        if change.type in ("device", "devicemodel") and self.devices is not None:
            await self.devices(msg)

    def _forget(self, uid: str) -> None:
        if uid:
            self._deleted[uid] = None
            while len(self._deleted) > 10_000:
                del self._deleted[next(iter(self._deleted))]

    def _dispatch(self, change: Change, msg: Message) -> None:
        if change.type == "node" and change.name == self.node and self.on_node is not None:
            self.on_node(msg.content, msg.operation == OP_DELETE)
        if change.type == "pod" and change.op == "delete":
            meta = (msg.content if isinstance(msg.content, dict) else {}).get("metadata") or {}
            self._forget(str(meta.get("uid") or change.old_uid))
        if change.type == "pod" and change.op != "ignored":
            self.pod_seen.set()
        if self.pods is None or change.op == "ignored":
            return  # without a pod manager yet, restore_pods() picks the cache up when it starts
        if change.type == "pod":
            pod = msg.content if isinstance(msg.content, dict) else None
            if pod is None or not (pod.get("metadata") or {}).get("uid"):
                return
            if change.op == "delete":
                self._spawn(self.pods.delete_pod(pod), f"delete-pod-{change.name}")
            elif (pod.get("metadata") or {}).get("deletionTimestamp"):
                self._terminate(pod)
            else:
                self._spawn(self._timed_sync(self.pods, pod), f"sync-pod-{change.name}")
        elif change.type in ("configmap", "secret"):
            self._spawn(self.pods.refresh_volumes(change.namespace), f"refresh-{change.namespace}")

    def _terminate(self, pod: dict[str, Any]) -> None:
        """Start the graceful delete of a pod with a deletionTimestamp, once per UID (the cloud sends
        several updates while a pod terminates)."""
        uid = pod["metadata"]["uid"]
        if uid not in self._terminating:
            self._terminating.add(uid)
            self._spawn(self._graceful_delete(pod), f"terminate-pod-{pod['metadata'].get('name', '')}")

    async def _graceful_delete(self, pod: dict[str, Any]) -> None:
        """Stop the containers, then the final delete with the UID precondition (capture seq 79),
        repeated until the cloud answers it: an edge that just joined may not reach it yet, and a pod
        whose final delete is lost stays Terminating for good (a kubelet's status manager retries too)."""
        assert self.pods is not None and self.hub is not None
        meta = pod["metadata"]
        await self.pods.delete_pod(pod, meta.get("deletionGracePeriodSeconds"))
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        req = new_message(
            SRC_EDGED, GROUP_META, OP_DELETE, f"{meta.get('namespace', 'default')}/pod/{meta['name']}", body
        )
        self._forget(meta["uid"])
        delays = backoff(1.0, cap=30.0)
        while True:
            try:
                resp = await self.hub.request(req, timeout=30.0)
            except KedgeError as exc:  # no answer (offline, reconnecting): ask again
                log.info("final delete of pod %s: %s; retrying", meta["name"], exc)
                await asyncio.sleep(next(delays))
                req = new_message(req.source, req.group, req.operation, req.resource, body)
                continue
            _, err = split_result(resp.content)
            code = (err or {}).get("code")
            if err is not None and isinstance(code, int) and (code >= 500 or code == 429):
                await asyncio.sleep(next(delays))
                req = new_message(req.source, req.group, req.operation, req.resource, body)
                continue
            if err is not None and code != 404:
                log.warning("final delete of pod %s refused: %s", meta["name"], err.get("message"))
            return

    async def on_pod_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        if (pod.get("metadata") or {}).get("uid") in self._deleted:
            log.debug("pod %s deleted: status not reported", (pod.get("metadata") or {}).get("name"))
            return
        if self.hub is not None:
            await self.hub.send(podpatch(pod, status))  # queued durably while offline

    async def restore_pods(self) -> int:
        """Hand every cached pod of this node to the pod manager (offline start, design.md §5), all at
        once as background tasks: the manager bounds how many start together, and a pod whose image
        pull hangs holds up neither the others nor the manager's reconcile loop (issue 22)."""
        if self.pods is None:
            return 0
        pods = [p for p in await self.store.list("pod") if isinstance(p, dict)]
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName", self.node) == self.node:
                meta = pod.get("metadata") or {}
                if meta.get("deletionTimestamp") and meta.get("uid"):
                    # deleted before the pod manager ran (right after the join, or while the edge was
                    # down): stop it *and* send the final delete, as a live update would have
                    self._terminate(pod)
                else:
                    self._spawn(self.pods.sync_pod(pod), f"restore-pod-{meta.get('name', '')}")
        return len(pods)

    async def drop_stale_pods(self, node: dict[str, Any]) -> int:
        """The node was registered anew as ``node``: pods cached from before its creation belonged to
        the deleted Node. Forget them and stop their containers; returns how many."""
        born = str((node.get("metadata") or {}).get("creationTimestamp") or "")
        stale = [
            p
            for p in await self.store.list("pod")
            if isinstance(p, dict)
            and born
            and "" < str((p.get("metadata") or {}).get("creationTimestamp") or "") < born
        ]
        for pod in stale:
            meta = pod.get("metadata") or {}
            await self.store.delete("pod", str(meta.get("namespace", "default")), str(meta.get("name", "")))
            self._forget(str(meta.get("uid") or ""))
            if self.pods is not None:
                self._spawn(self.pods.delete_pod(pod, 0), f"delete-stale-pod-{meta.get('name')}")
            log.warning("pod %s/%s was of the deleted Node: stopped", meta.get("namespace"), meta.get("name"))
        return len(stale)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
