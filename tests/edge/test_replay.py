"""Replay: kedge's edge runtime, driven through the REAL CloudHub/EdgeHub channel by the recorded
cloud→edge frames, answers what edgecore answered — same route, same content form, same key set.

Test assembly (stated plainly): the channel is real; the requests are answered by the test controller
in tests/fixtures/edge.py with the recorded shapes, because the cloud's edge controller is not built yet.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runtime.edge.run import EdgeRuntime
from runtime.kube.client import KubeClient
from runtime.kube.resources import LEASES
from runtime.protocol import Message
from tests.fixtures.edge import (
    CloudRequests,
    KubeEdgeLikeHub,
    RecordedCloud,
    capture,
    make_edge_root,
    running,
    serving,
    tap_frames,
)
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

NODE = "ke-edge-1"  # the recorded node, so resources compare verbatim


def form(content: Any) -> tuple[str, Any]:
    """(kind of content, key set): dict keys, the keys of a JSON string's object, or the literal."""
    if isinstance(content, dict):
        return "object", sorted(content)
    if isinstance(content, str):
        try:
            inner = json.loads(content)
        except ValueError:
            return "string", content
        return "json-string", sorted(inner) if isinstance(inner, dict) else type(inner).__name__
    return type(content).__name__, None


def route(m: Message) -> tuple[str, str, str, str]:
    return m.source, m.group, m.operation, m.resource


def recorded_edge_frames() -> list[Message]:
    return [Message.from_dict(r["msg"]) for r in capture() if r["dir"] == "edge->cloud"]


def recorded_pushes() -> list[Message]:
    """Cloud→edge resource messages (not responses) the edge must cache and ack."""
    out = []
    for r in capture():
        m = Message.from_dict(r["msg"])
        if r["dir"] == "cloud->edge" and not m.parent_msg_id:
            out.append(m)
    return out


@pytest.fixture
async def cloud(tls_certs: TLSCerts, monkeypatch: pytest.MonkeyPatch, cloud_api: KubeClient) -> Any:
    frames = tap_frames(monkeypatch)
    ctl = CloudRequests(cloud_api)
    async with serving(ctl, tls_certs.server_context(), hub_class=KubeEdgeLikeHub) as hub:
        yield hub, ctl, frames


async def test_replay_matches_recording(cloud: Any, tls_certs: TLSCerts, tmp_path: Path) -> None:
    hub, ctl, frames = cloud
    cfg = make_edge_root(tmp_path, tls_certs, NODE, f"127.0.0.1:{hub.bound_port}")
    async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
        await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
        await eventually_async(
            lambda: (
                rt.node is not None
                and rt.node.lease_renewed is not None
                and any(m.operation == "update" and "/lease/" in m.resource for m in ctl.requests)
            ),
            10,
            "lease create + update",
        )
        pushes = recorded_pushes()
        for m in pushes:
            await hub.send(NODE, m)
        acked_ids = {m.msg_id for m in pushes if m.resource.count("/") == 2}
        await eventually_async(
            lambda: acked_ids <= {f.parent_msg_id for f in frames}, 10, "acks of every push"
        )
        # the registration Node compares to the recorded one field by field
        mine_node = next(m for m in ctl.requests if m.operation == "insert" and "/node/" in m.resource)
        rec = {route(m): m for m in recorded_edge_frames()}
        rec_node = rec[("edged", "meta", "insert", f"null/node/{NODE}")].content
        assert sorted(mine_node.content) == sorted(rec_node)
        for key in ("status",):
            assert sorted(mine_node.content[key]) == sorted(rec_node[key])
        for key in ("capacity", "allocatable", "nodeInfo", "daemonEndpoints"):
            assert sorted(mine_node.content["status"][key]) == sorted(rec_node["status"][key]), key
        assert set(rec_node["metadata"]["labels"]) <= set(mine_node.content["metadata"]["labels"])
        assert mine_node.content["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")
        # every route the edge used also appears in the recording, with the same content form
        rec_forms: dict[tuple[str, str, str, str], set[Any]] = {}
        for m in recorded_edge_frames():
            rec_forms.setdefault(route(m), set()).add(repr(form(m.content)))
        mine = [f for f in frames if f.operation != "keepalive"]
        checked = set()
        for f in mine:
            r = route(f)
            if r not in rec_forms:
                continue
            checked.add(r)
            assert repr(form(f.content)) in rec_forms[r], f"{r}: {form(f.content)} not in {rec_forms[r]}"
        want = {
            ("edged", "meta", "insert", f"null/node/{NODE}"),
            ("edged", "meta", "patch", f"null/nodepatch/{NODE}"),
            ("edged", "meta", "query", f"kube-node-lease/lease/{NODE}"),
            ("edged", "meta", "insert", f"kube-node-lease/lease/{NODE}"),
            ("edged", "meta", "update", f"kube-node-lease/lease/{NODE}"),
            ("edgecontroller", "resource", "response", "default/pod/demo-cm-pod"),
            ("edgecontroller", "resource", "response", "default/configmap/demo-cm"),
            ("meta", "twin", "response", "default/device/temp-sensor-01"),
            ("meta", "twin", "response", "default/devicemodel/temp-sensor-model"),
            ("edgecontroller", "resource", "response", f"kube-node-lease/lease/{NODE}"),
        }
        assert want <= checked, f"routes never produced: {want - checked}"
        # nodepatch: a JSON string holding a strategic-merge status patch, as recorded
        patch = json.loads(next(f for f in mine if "nodepatch" in f.resource).content)
        assert {"$setElementOrder/conditions", "conditions"} <= set(patch["status"])
        # the lease update carries the object the cloud returned, renewTime advanced
        upd = [f for f in mine if f.operation == "update" and "/lease/" in f.resource]
        lease = await ctl.client.get(LEASES, NODE, namespace="kube-node-lease")
        node = await ctl.node(NODE)
        assert node is not None
        assert upd[-1].content["metadata"]["uid"] == lease["metadata"]["uid"]
        assert upd[-1].content["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
        # keepalives as recorded
        ka = next(f for f in frames if f.operation == "keepalive")
        assert (route(ka), ka.content) == (("websocket", "resource", "keepalive", "node"), "ping")
        # the cache now holds what was pushed and not deleted afterwards
        assert rt.store is not None
        stats = await rt.store.stats()
        assert stats["objects"].get("node") == 1
        assert "pod" not in stats["objects"]  # both recorded pods were deleted at the end


async def test_kedge_peer_gets_no_lease_traffic(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    hub, ctl = recorded_cloud.hub, recorded_cloud.ctl
    cfg = make_edge_root(tmp_path, tls_certs, "kedge-1", recorded_cloud.server)
    async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.2)) as rt:
        await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
        await asyncio.sleep(1.0)  # the thing under test: five lease periods, no Lease traffic
        assert rt.hub is not None and rt.hub.status()["peer_kind"] == "kedge"
        assert not [m for m in ctl.requests if "/lease/" in m.resource]
        assert hub.sessions()[0].epoch == (await rt.store.stats())["epoch"] if rt.store else False


async def test_restart_reregisters_409_and_reuses_lease(
    cloud: Any, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    """The recorded restart (seq 139-163): insert → 409 AlreadyExists is fine, the Lease is found by
    query and updated, never created twice."""
    hub, ctl, _ = cloud
    cfg = make_edge_root(tmp_path, tls_certs, NODE, f"127.0.0.1:{hub.bound_port}")
    for _ in range(2):
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            await eventually_async(lambda: rt.node is not None and rt.node.lease_renewed, 10, "lease")
    inserts = [m for m in ctl.requests if m.operation == "insert" and "/event/" not in m.resource]
    assert [m.resource for m in inserts] == [
        f"null/node/{NODE}",
        f"kube-node-lease/lease/{NODE}",
        f"null/node/{NODE}",
    ]
    # the second insert was answered 409 AlreadyExists (the node existed), yet the node got Ready
    lease_ops = [m.operation for m in ctl.requests if "/lease/" in m.resource]
    assert lease_ops[:2] == ["query", "insert"]  # first start: 404, then create (seq 19-22)
    assert lease_ops[2:4] == ["query", "update"]  # restart: found, then renewed at once (seq 141-144)
