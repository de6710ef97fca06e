"""Replay every edge→cloud request of the recorded KubeEdge session (capture.jsonl) against kedge's cloud.

The peer is KubeEdge-shaped: a raw websocket with the recorded headers and none of kedge's, acking
pushes and responses the way edgecore does. The cluster holds what the recorded cluster held (the
ConfigMap and the two pods, bound to ke-edge-1); recorded UIDs in request bodies are mapped to the
ones this cluster gave out. Each response must match the recorded one in route, content form
(wrapped / bare object / "OK"), key set and error-or-not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from runtime.kube.resources import CONFIGMAPS, LEASES, NODES, PODS
from runtime.protocol import ACK_CONTENT, OP_RESPONSE, Message, ack, decode, encode, keepalive
from tests.fixtures.cloudctl import PROJECT, CloudEnv, Replica, capture
from tests.fixtures.wait import eventually_async

NODE = "ke-edge-1"


def recorded_pod(name: str) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "bb",
        "image": "registry.local/busybox:1.36",
        "command": ["sleep", "3600"],
        "imagePullPolicy": "Never",
    }
    spec: dict[str, Any] = {
        "nodeName": NODE,
        "hostNetwork": True,
        "terminationGracePeriodSeconds": 5,
        "containers": [c],
    }
    if name == "demo-cm-pod":
        ref = {"configMapKeyRef": {"key": "greeting", "name": "demo-cm"}}
        c["env"] = [{"name": "GREETING", "valueFrom": ref}]
        c["volumeMounts"] = [{"mountPath": "/etc/demo", "name": "cfg"}]
        spec["volumes"] = [{"configMap": {"name": "demo-cm"}, "name": "cfg"}]
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "demo"}}, "spec": spec}


class Peer:
    """A KubeEdge-shaped edge: raw frames, acks what the cloud pushes and the responses it gets."""

    def __init__(self, cloud: Replica, env: CloudEnv, pushed: list[Message]) -> None:
        self.cloud, self.env = cloud, env
        self.ws: ClientConnection | None = None
        self.responses: dict[str, Message] = {}
        self.pushed = pushed
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        self.ws = await connect(
            f"wss://{self.cloud.address}/{PROJECT}/{NODE}/events",
            ssl=self.env.tls.client_context(self.env.tls.client(NODE)),
            additional_headers={"node_id": NODE, "project_id": PROJECT},
            proxy=None,
            ping_interval=None,
        )
        self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._keepalive())]
        await eventually_async(lambda: self.cloud.hub.connected(NODE), what="session")
        (info,) = self.cloud.hub.sessions()
        assert info.peer_kind == "kubeedge"

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()

    async def _keepalive(self) -> None:
        assert self.ws is not None
        while True:
            await self.ws.send(encode(keepalive()))
            await asyncio.sleep(0.5)  # the thing under test: a keepalive sender's pace

    async def _read(self) -> None:
        assert self.ws is not None
        async for data in self.ws:
            msg = decode(data)
            if msg.parent_msg_id and msg.operation == OP_RESPONSE:
                self.responses[msg.parent_msg_id] = msg
                if msg.content != ACK_CONTENT:
                    await self.ws.send(encode(ack(msg)))
            else:
                self.pushed.append(msg)
                await self.ws.send(encode(ack(msg)))

    async def request(self, frame: dict[str, Any]) -> Message:
        assert self.ws is not None
        await self.ws.send(json.dumps(frame))
        mid = frame["header"]["msg_id"]
        return await eventually_async(lambda: self.responses.get(mid), what=f"response to {frame['route']}")


def form(content: Any) -> str:
    if isinstance(content, str):
        return "string"
    if isinstance(content, dict) and ("Object" in content or "Err" in content) and "kind" not in content:
        return "wrapped"
    return "bare" if isinstance(content, dict) else type(content).__name__


def recorded_uids(frames: list[dict[str, Any]], by_parent: dict[str, Any]) -> dict[str, str]:
    """The recorded cluster's UIDs of the Node, the Lease and each pod pushed down."""
    rec_uid = {
        "node": by_parent[frames[5]["msg"]["header"]["msg_id"]]["content"]["Object"]["metadata"]["uid"],
        "lease": by_parent[frames[21]["msg"]["header"]["msg_id"]]["content"]["Object"]["metadata"]["uid"],
    }
    for f in frames:
        c = f["msg"].get("content")
        if (
            f["dir"] == "cloud->edge"
            and f["msg"]["route"].get("operation") == "insert"
            and f["msg"]["route"]["resource"].startswith("default/pod/")
        ):
            rec_uid["pod/" + c["metadata"]["name"]] = c["metadata"]["uid"]
    return rec_uid


def assert_answered_as_recorded(got: Message, want: dict[str, Any], where: str) -> None:
    """Same route, same form (string, bare, wrapped), same keys; a wrapped error with the same code."""
    assert {k: v for k, v in want["route"].items()} == got.to_dict()["route"], where
    assert form(got.content) == form(want["content"]), (where, got.content)
    if isinstance(want["content"], dict):
        assert set(got.content) == set(want["content"]), where
    if form(want["content"]) == "wrapped":
        assert (got.content["Err"] is None) == (want["content"]["Err"] is None), (where, got.content)
        assert (got.content["Object"] is None) == (want["content"]["Object"] is None), where
        if want["content"]["Err"] is not None:
            w, g = want["content"]["Err"]["ErrStatus"], got.content["Err"]["ErrStatus"]
            assert (g["code"], g["reason"]) == (w["code"], w["reason"]), where
    else:
        assert got.content == want["content"] if isinstance(want["content"], str) else True, where


async def test_every_recorded_request_is_answered_as_recorded(cloudenv: CloudEnv) -> None:
    env, client = cloudenv, cloudenv.client
    frames = capture()
    by_parent = {
        f["msg"]["header"].get("parent_msg_id"): f["msg"]
        for f in frames
        if f["dir"] == "cloud->edge" and f["msg"]["header"].get("parent_msg_id")
    }
    rec_uid = recorded_uids(frames, by_parent)
    await client.create(
        CONFIGMAPS, {"metadata": {"name": "demo-cm", "namespace": "default"}, "data": {"greeting": "hello"}}
    )
    actual: dict[str, str] = {}
    cloud = await env.cloud()
    all_pushed: list[Message] = []
    peer = Peer(cloud, env, all_pushed)
    await peer.open()
    checked: list[str] = []
    try:
        for f in frames:
            m = f["msg"]
            if f["dir"] != "edge->cloud":
                continue
            if not m["route"]:  # edgecore's empty goodbye frame: it stopped; replay the restart
                await peer.close()
                await eventually_async(lambda: not cloud.hub.connected(NODE), what="session gone")
                peer = Peer(cloud, env, all_pushed)
                await peer.open()
                continue
            if m["route"].get("group") != "meta":
                continue  # keepalives, acks, twin membership (the device controller's)
            for key, what in (
                ("node", lambda: client.get(NODES, NODE)),
                ("lease", lambda: client.get(LEASES, NODE, namespace="kube-node-lease")),
            ):
                if key not in actual:
                    with contextlib.suppress(Exception):
                        actual[key] = (await what())["metadata"]["uid"]
            text = json.dumps(m)
            for key, uid in rec_uid.items():
                if key in actual:
                    text = text.replace(uid, actual[key])
            got = await peer.request(json.loads(text))
            want = by_parent[m["header"]["msg_id"]]
            where = f"seq {f['seq']} {m['route']['operation']} {m['route']['resource']}"
            assert_answered_as_recorded(got, want, where)
            checked.append(where)
            if m["route"]["resource"] == f"null/node/{NODE}" and "pod/demo-plain" not in actual:
                # the recorded pods are created once the Node exists (PodGC deletes pods of unknown nodes)
                for name in ("demo-cm-pod", "demo-plain"):
                    actual["pod/" + name] = (await client.create(PODS, recorded_pod(name)))["metadata"]["uid"]
        # the cloud also pushed the pods (with their ConfigMap) down, and their deletes after the edge's
        pushed = {(p.operation, p.resource) for p in all_pushed}
        assert ("insert", "default/pod/demo-cm-pod") in pushed
        assert ("insert", "default/configmap/demo-cm") in pushed
        gone = ("delete", "default/pod/demo-plain")
        await eventually_async(
            lambda: gone in {(p.operation, p.resource) for p in all_pushed}, what="delete pushed"
        )
    finally:
        await peer.close()
    requests = [f for f in frames if f["dir"] == "edge->cloud" and f["msg"]["route"].get("group") == "meta"]
    assert len(checked) == len(requests) == 45  # every recorded edge request
