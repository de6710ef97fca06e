"""Answers to the edge's requests (group ``meta``), in the exact shapes of design.md §4's table.

The edge acts as its node's kubelet through the cloud, so every request is checked the way the node
authorizer checks a kubelet: a node touches only its own Node and Lease, the pods bound to it and what
those pods reference (``World.references``); a service-account token only for a service account a
pod on the node runs as, bound to that pod. A refused or missing object is answered with an error,
never with silence: ``{"Object": null, "Err": {"ErrStatus": <Status>}}`` — the edge reads that form
for every request, wrapped or bare.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from runtime.cloud.controllers.world import World, meta, rv_of
from runtime.cloud.tunnel.endpoint import KubeletEndpoints
from runtime.errors import KedgeError, Refused
from runtime.kube.client import KubeClient
from runtime.kube.errors import AlreadyExists, KubeNotFound, StatusInfo
from runtime.kube.resources import CONFIGMAPS, EVENTS, LEASES, NODES, PODS, SECRETS, SERVICEACCOUNTS
from runtime.pki import ANN_KEY_HASH
from runtime.protocol import (
    GROUP_META,
    OP_DELETE,
    OP_INSERT,
    OP_PATCH,
    OP_QUERY,
    OP_RESPONSE,
    OP_UPDATE,
    RT_CONFIGMAP,
    RT_EVENT,
    RT_LEASE,
    RT_NODE,
    RT_NODEPATCH,
    RT_POD,
    RT_PODPATCH,
    RT_SECRET,
    RT_SERVICEACCOUNTTOKEN,
    Message,
    failure_status,
    object_result,
    parse_resource,
    response_to,
    strip_node_prefix,
)

log = logging.getLogger("kedge.cloud.edgecontroller")

LEASE_NS = "kube-node-lease"
TOKEN_SECONDS = 3607  # what edgecore asks for (recorded)
LEASE_MIN_WRITE = 10.0  # the cloud writes each Lease at most this often (design.md §4)
Send = Callable[[str, Message], Awaitable[Any]]


def status_of(exc: BaseException, name: str, kind: str) -> dict[str, Any]:
    """The metav1.Status to put in ``Err`` for an API failure or a refusal."""
    if isinstance(exc, Refused):
        return failure_status(403, "Forbidden", str(exc), {"name": name, "kind": kind})
    if isinstance(exc, StatusInfo) and getattr(exc, "status", None):
        st = dict(exc.status)
        if st.get("kind") == "Status" and "reason" in st:
            st.pop("kind", None)
            st.pop("apiVersion", None)
            st.setdefault("metadata", {})
            return st
        return failure_status(exc.code or 500, exc.reason or "InternalError", str(exc))
    return failure_status(500, "InternalError", str(exc))


class EdgeRequests:
    """``handle(node, msg)`` answers one edge request through ``send(node, response)``."""

    def __init__(
        self,
        client: KubeClient,
        world: World,
        send: Send,
        *,
        lease_min_write: float = LEASE_MIN_WRITE,
        on_lease: Callable[[str], None] | None = None,
        on_register: Callable[[dict[str, Any]], None] | None = None,
        concurrency: int = 32,
        endpoints: KubeletEndpoints | None = None,
    ) -> None:
        self.client, self.world, self.send = client, world, send
        self.endpoints = endpoints  # the cloud's override of the nodes' kubelet endpoint (tunnel/)
        self.lease_min_write = lease_min_write
        self.on_lease = on_lease  # told when an edge wrote its own lease (KubeEdge peers)
        self.on_register = on_register  # adds the session marks to a Node registered through us
        self.key_hashes: dict[str, str] = {}  # node -> hash of its session's certificate key
        self._leases: dict[str, tuple[float, dict[str, Any]]] = {}  # node -> (monotonic, last written)
        self.answered = 0
        # At most this many API calls in flight for edge requests: thousands of edges renewing at once
        # would otherwise queue in the HTTP client's pool, whose bookkeeping grows with the queue.
        self._api = asyncio.Semaphore(concurrency)
        self.writes = 0  # API writes made for edge requests (leases included; throttled ones not)

    async def handle(self, node: str, msg: Message) -> None:
        if msg.operation == OP_RESPONSE or msg.group != GROUP_META:
            return  # acks of our responses; twin/device groups belong to other controllers
        owner, rest = strip_node_prefix(msg.resource)
        if owner is not None and owner != node:
            return
        r = parse_resource(rest)
        if r is None or not r.name:
            return
        handler = self._handlers().get(r.type)
        if handler is None:
            content: Any = object_result(
                None, failure_status(400, "BadRequest", f"unsupported request {msg.operation} {rest}")
            )
            await self.send(node, response_to(msg, content))
            return
        name, ns = r.name, r.k8s_namespace or ""
        rv = ""
        try:
            async with self._api:
                content = await handler(node, msg, ns, name)
            if r.type != RT_LEASE and (msg.operation != OP_QUERY or r.type == RT_SERVICEACCOUNTTOKEN):
                self.writes += 1
            if content is None:
                return  # events: accepted, no answer (edgecore does not wait for one)
            if isinstance(content, tuple):
                content, rv = content
        except KedgeError as exc:  # Refused among them: 403 Forbidden
            kind = {RT_NODEPATCH: "nodes", RT_PODPATCH: "pods"}.get(r.type, r.type)
            content = object_result(None, status_of(exc, name, kind))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            status = failure_status(400, "BadRequest", f"malformed {r.type} request: {exc}")
            content = object_result(None, status)
        self.answered += 1
        await self.send(node, response_to(msg, content, resourceversion=rv))

    def _handlers(self) -> dict[str, Callable[[str, Message, str, str], Awaitable[Any]]]:
        return {
            RT_NODE: self._node,
            RT_NODEPATCH: self._nodepatch,
            RT_LEASE: self._lease,
            RT_PODPATCH: self._podpatch,
            RT_POD: self._pod,
            RT_CONFIGMAP: self._configmap,
            RT_SECRET: self._secret,
            RT_SERVICEACCOUNTTOKEN: self._token,
            RT_EVENT: self._event,
        }

    # --- the node's own objects ---------------------------------------------------------------

    @staticmethod
    def _own(node: str, name: str, what: str) -> None:
        if name != node:
            raise Refused(f"node {node!r} may not touch {what} {name!r}")

    async def _node(self, node: str, msg: Message, ns: str, name: str) -> Any:
        self._own(node, name, "node")
        if msg.operation == OP_INSERT:
            body = dict(msg.content or {})
            body["metadata"] = {**(body.get("metadata") or {}), "name": name}
            key = self.key_hashes.get(node)
            if key:  # first registration records the node's key: a token alone cannot take it over
                body["metadata"]["annotations"] = {
                    **(body["metadata"].get("annotations") or {}),
                    ANN_KEY_HASH: key,
                }
            if self.on_register is not None:
                self.on_register(body)
            if self.endpoints is not None:
                body = self.endpoints.rewrite_status(body)
            try:
                return object_result(await self.client.create(NODES, body))
            except AlreadyExists as exc:  # re-registration: the existing Node and the 409 (recorded)
                try:
                    existing: Any = await self.client.get(NODES, name)
                except KubeNotFound:
                    existing = None
                recorded = meta(existing or {}).get("annotations", {}).get(ANN_KEY_HASH)
                if key and existing is not None and not recorded:  # registered before keys were recorded
                    patch = {"metadata": {"annotations": {ANN_KEY_HASH: key}}}
                    existing = await self.client.patch(NODES, name, patch, type="merge")
                return object_result(existing, status_of(exc, name, "nodes"))
        if msg.operation == OP_UPDATE:
            return object_result(await self.client.replace(NODES, msg.content))
        if msg.operation == OP_QUERY:
            return object_result(await self.client.get(NODES, name))
        if msg.operation == OP_DELETE:  # `kedge reset --delete-node`: a kubelet may delete its own Node
            await self.client.delete(NODES, name)
            return "OK"
        raise Refused(f"node {node!r} may not {msg.operation} its Node")

    async def _nodepatch(self, node: str, msg: Message, ns: str, name: str) -> Any:
        self._own(node, name, "node")
        patch = json.loads(msg.content) if isinstance(msg.content, str) else msg.content
        if self.endpoints is not None and isinstance(patch, dict):
            patch = self.endpoints.rewrite_patch(patch)
        obj = await self.client.patch(NODES, name, patch or {}, type="strategic", subresource="status")
        return object_result(obj), rv_of(obj)

    async def _lease(self, node: str, msg: Message, ns: str, name: str) -> Any:
        self._own(node, name, "lease")
        if ns != LEASE_NS:
            raise Refused(f"node leases live in {LEASE_NS}, not {ns!r}")
        if msg.operation == OP_QUERY:
            return object_result(await self.client.get(LEASES, name, namespace=LEASE_NS))
        if msg.operation not in (OP_INSERT, OP_UPDATE):
            raise Refused(f"node {node!r} may not {msg.operation} its Lease")
        if self.on_lease is not None:
            self.on_lease(node)
        last = self._leases.get(node)
        now = time.monotonic()
        if msg.operation == OP_UPDATE and last is not None and now - last[0] < self.lease_min_write:
            return object_result(last[1])  # written moments ago: at most one write per 10 s per node
        body = dict(msg.content or {})
        body.setdefault("metadata", {}).update(name=name, namespace=LEASE_NS)
        if msg.operation == OP_INSERT:
            obj = await self.client.create(LEASES, body, namespace=LEASE_NS)
        else:
            body["metadata"].pop("resourceVersion", None)  # the edge's renewal wins, as a kubelet's does
            obj = await self.client.replace(LEASES, body, namespace=LEASE_NS)
        self._leases[node] = (now, obj)
        self.writes += 1
        return object_result(obj)

    # --- pods ------------------------------------------------------------------------------------

    async def _my_pod(self, node: str, ns: str, name: str) -> dict[str, Any]:
        pod = self.world.pod_on(node, ns, name)
        if pod is None:  # not (yet) in the cache: ask the API, never trust the edge
            pod = await self.client.get(PODS, name, namespace=ns)
            if (pod.get("spec") or {}).get("nodeName") != node:
                raise Refused(f"pod {ns}/{name} is not bound to node {node!r}")
        return pod

    async def _podpatch(self, node: str, msg: Message, ns: str, name: str) -> Any:
        pod = await self._my_pod(node, ns, name)
        patch = json.loads(msg.content) if isinstance(msg.content, str) else dict(msg.content or {})
        patch_meta = patch.setdefault("metadata", {})
        patch_meta.setdefault("uid", meta(pod).get("uid"))  # UID precondition: never patch a successor
        obj = await self.client.patch(PODS, name, patch, namespace=ns, type="strategic", subresource="status")
        return object_result(obj), rv_of(obj)

    async def _pod(self, node: str, msg: Message, ns: str, name: str) -> Any:
        if msg.operation != OP_DELETE:
            raise Refused(f"node {node!r} may only delete pods ({msg.operation} refused)")
        pod = await self._my_pod(node, ns, name)
        opts = msg.content if isinstance(msg.content, dict) else {}
        uid = (opts.get("preconditions") or {}).get("uid") or meta(pod).get("uid")
        grace = opts.get("gracePeriodSeconds")
        await self.client.delete(
            PODS, name, namespace=ns, uid=str(uid), grace_period=int(grace) if grace is not None else None
        )
        return "OK"

    # --- references ------------------------------------------------------------------------------

    async def _referenced(self, node: str, typ: str, ns: str, name: str) -> Any:
        if not self.world.references(node, typ, ns, name):
            raise Refused(f"no pod bound to node {node!r} references {typ} {ns}/{name}")
        obj = await self.client.get(CONFIGMAPS if typ == RT_CONFIGMAP else SECRETS, name, namespace=ns)
        return obj, rv_of(obj)

    async def _configmap(self, node: str, msg: Message, ns: str, name: str) -> Any:
        if msg.operation != OP_QUERY:
            raise Refused(f"node {node!r} may only query configmaps")
        return await self._referenced(node, RT_CONFIGMAP, ns, name)

    async def _secret(self, node: str, msg: Message, ns: str, name: str) -> Any:
        if msg.operation != OP_QUERY:
            raise Refused(f"node {node!r} may only query secrets")
        return await self._referenced(node, RT_SECRET, ns, name)

    async def _token(self, node: str, msg: Message, ns: str, name: str) -> Any:
        req = msg.content if isinstance(msg.content, dict) else {}
        spec = req.get("spec") or {}
        ref = spec.get("boundObjectRef") or {}
        if ref.get("kind", "Pod") != "Pod" or not ref.get("name"):
            raise Refused("a service-account token must be bound to a pod on the node")
        pod = self.world.pod_for_token(node, ns, name, str(ref["name"]), str(ref.get("uid") or ""))
        if pod is None:
            raise Refused(f"no pod {ns}/{ref['name']} on node {node!r} runs as service account {name!r}")
        body: dict[str, Any] = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": int(spec.get("expirationSeconds") or TOKEN_SECONDS),
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": meta(pod)["name"],
                    "uid": meta(pod)["uid"],
                },
            },
        }
        if spec.get("audiences"):
            body["spec"]["audiences"] = spec["audiences"]
        return await self.client.create(SERVICEACCOUNTS, body, namespace=ns, name=name, subresource="token")

    async def _event(self, node: str, msg: Message, ns: str, name: str) -> Any:
        body = msg.content
        if isinstance(body, str):
            body = json.loads(body)
        ev = dict(body or {})
        ev.setdefault("metadata", {}).update(name=name, namespace=ns)
        try:
            if msg.operation == OP_PATCH:
                try:
                    await self.client.patch(EVENTS, name, body, namespace=ns, type="strategic")
                except KubeNotFound:
                    if "involvedObject" not in ev:
                        raise
                    # kedge's edge patches with the whole event: its first write was lost (dropped
                    # while offline) or expired (the API server's event TTL), so create it, as
                    # client-go's recorder does when a patch finds nothing
                    await self.client.create(EVENTS, ev, namespace=ns)
            else:
                await self.client.create(EVENTS, ev, namespace=ns)
        except KedgeError as exc:
            log.debug("event %s/%s from %s not recorded: %s", ns, name, node, exc)
        return None
