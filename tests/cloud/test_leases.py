"""Lease renewals at scale: the lean HTTP path, the paced schedule, and the writes a connect costs."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any, cast

import pytest
from lightkube.config.client_adapter import BearerAuth

from runtime.cloud import cloudcore as cloud_run
from runtime.cloud.context import CloudContext
from runtime.cloud.controllers.liveness import ANN_OWNER, CONDITION, LEASE_NS, LEASE_PATH, NodeLiveness
from runtime.cloud.controllers.replicas import Replicas
from runtime.cloud.controllers.world import EDGE_LABEL, World
from runtime.cloud.hub.session import SessionInfo
from runtime.cloud.pki_store import PKIStore
from runtime.kube.client import KubeClient
from runtime.kube.errors import KubeNotFound, Unauthorized
from runtime.kube.leanhttp import LeanHTTP
from runtime.kube.resources import LEASES, NODES
from tests.fixtures.cloudctl import CloudEnv
from tests.fixtures.cloudinit import ensure_namespace
from tests.fixtures.wait import eventually_async


async def test_lease_http_patches_through_the_kubeconfig(kube: KubeClient) -> None:
    await kube.create(
        LEASES, {"metadata": {"name": "lh-1"}, "spec": {"holderIdentity": "lh-1"}}, namespace=LEASE_NS
    )
    http = LeanHTTP.for_client(kube, connections=2)
    try:
        for i in range(6):
            body = b'{"spec":{"renewTime":"2026-12-04T12:00:0%d.000000Z"}}' % i
            assert await http.patch(f"{LEASE_PATH}/lh-1", body) == 200
        lease = await kube.get(LEASES, "lh-1", namespace=LEASE_NS)
        assert lease["spec"]["renewTime"].startswith("2026-12-04T12:00:05")
        assert lease["spec"]["holderIdentity"] == "lh-1"  # a merge patch leaves the rest alone
        assert http.requests == 6 and len(http._idle) <= 2  # keep-alive: no connection per request
        with pytest.raises(KubeNotFound):
            await http.patch(f"{LEASE_PATH}/lh-missing", b'{"spec":{}}')
        http.auth, http._authorization = BearerAuth("not-the-token"), None
        with pytest.raises(Unauthorized):
            await http.patch(f"{LEASE_PATH}/lh-1", b'{"spec":{}}')
    finally:
        await http.close()


def _ts(text: str) -> float:
    t = dt.datetime.strptime(text[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=dt.UTC).timestamp()


async def test_renewals_are_paced_spread_and_never_too_often(kube: KubeClient) -> None:
    """30 nodes connect at once; renew_every 1 s: the first round is spread (not 30 writes at once),
    every Lease is renewed each period, and no Lease is written twice within the period."""
    n, period = 30, 1.0
    world = World()
    for i in range(n):
        node = await kube.create(NODES, {"metadata": {"name": f"pace-{i}", "labels": {EDGE_LABEL: ""}}})
        world.apply("Node", "ADDED", node)
    live = NodeLiveness(kube, world, "rep-pace", renew_every=period, tick=0.1, concurrency=4)
    t0 = time.time()
    for i in range(n):
        await live.on_connect(
            SessionInfo(
                node=f"pace-{i}",
                project_id="p",
                peer_kind="kedge",
                version="1",
                epoch="",
                remote="",
                since=t0,
            )
        )
    task = asyncio.create_task(live.run())
    seen: dict[str, set[str]] = defaultdict(set)
    try:
        while time.time() - t0 < 3.6:
            for lease in (await kube.list(LEASES, namespace=LEASE_NS)).items:
                name = lease["metadata"]["name"]
                if name.startswith("pace-") and lease["spec"].get("renewTime"):
                    seen[name].add(lease["spec"]["renewTime"])
            await asyncio.sleep(0.05)  # the thing under test: renewals sampled over a 3.6 s window
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(seen) == n
    writes = sorted(_ts(t) for times in seen.values() for t in times)
    for name, times in seen.items():
        ts = sorted(_ts(t) for t in times)
        assert len(ts) >= 3, (name, ts)
        gaps = [b - a for a, b in itertools.pairwise(ts)]
        assert min(gaps) >= 0.9 * period, (name, gaps)  # at most one write per period
        assert max(gaps) <= 1.6 * period, (name, gaps)  # and one every period
    # paced (burst 4, then 1.25 * n per period), not all at once: the first round spreads over the period
    assert writes[n - 1] - writes[0] >= 0.5 * period


async def test_after_a_restart_every_lease_is_renewed_before_the_session_marks(kube: KubeClient) -> None:
    """A restarted cloud (a new replica identity) sees 40 edges reconnect at once: each needs its
    Lease renewed and its session marks (owner annotation, EdgeConnected — two Node writes) written.
    Renewals go first, so the marks can never push a Lease past the node-lifecycle grace."""
    n = 40
    world = World()
    for i in range(n):
        body = {
            "metadata": {"name": f"prio-{i}", "labels": {EDGE_LABEL: ""}, "annotations": {ANN_OWNER: "old"}}
        }
        world.apply("Node", "ADDED", await kube.create(NODES, body))
    leases_at_first_mark: list[int] = []

    class Recording(NodeLiveness):
        async def mark(self, node: str, connected: bool, since: float = 0.0) -> bool:
            leases_at_first_mark.append(self.lease_writes)
            return await super().mark(node, connected, since)

    live = Recording(kube, world, "rep-new", renew_every=10.0, tick=0.05, concurrency=4)
    now = time.time()
    for i in range(n):
        info = SessionInfo(f"prio-{i}", "p", "kedge", "1", "", "", now)
        await live.on_connect(info)
    task = asyncio.create_task(live.run())
    try:
        await eventually_async(lambda: live.lease_writes >= n and len(leases_at_first_mark) >= n, within=60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # the first mark started once every renewal was handed out (the 4 workers may still be writing them)
    assert leases_at_first_mark[0] >= n - 4, leases_at_first_mark[:3]
    owners = {(await kube.get(NODES, f"prio-{i}"))["metadata"]["annotations"][ANN_OWNER] for i in range(n)}
    assert owners == {"rep-new"}


async def test_first_connect_writes_the_node_once(cloudenv: CloudEnv) -> None:
    """The registration carries the session marks: no Node write of the cloud's own after the create."""
    cloud = await cloudenv.cloud()
    e = await cloudenv.edge("once-1", cloud)
    await cloudenv.register(e)
    await eventually_async(
        lambda: "once-1" in cloud.ctl.world.nodes and cloud.ctl.liveness.lease_writes, what="lease"
    )
    await eventually_async(lambda: not cloud.ctl.liveness.nodes["once-1"].mark_pending, what="marks settled")
    node = await cloudenv.client.get(NODES, "once-1")
    assert node["metadata"]["annotations"][ANN_OWNER] == cloud.ctl.identity
    cond = next(c for c in node["status"]["conditions"] if c["type"] == CONDITION)
    assert cond["status"] == "True"
    assert cloud.ctl.liveness.node_writes == 0


async def test_token_gc_runs_on_the_leader_only(kube: KubeClient) -> None:
    await ensure_namespace(kube, "kubeedge")
    store = PKIStore(kube, "kubeedge")
    info, _ = await store.create_token(ttl=60, now=time.time() - 600)  # expired
    leader = [False]
    ctx = cast(CloudContext, SimpleNamespace(store=store, leader=lambda: leader[0]))
    task = asyncio.create_task(cloud_run._token_gc(ctx, every=0.05))
    await asyncio.sleep(0.5)  # the thing under test: ten gc periods pass on a follower
    assert info.id in {t.id for t in await store.list_tokens()}  # a follower leaves it alone
    leader[0] = True

    async def gone() -> bool:
        return info.id not in {t.id for t in await store.list_tokens()}

    try:
        await eventually_async(gone, 10, "the leader to collect the expired token")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_no_leadership_before_the_peers_were_listed(kube: KubeClient) -> None:
    await ensure_namespace(kube, "kubeedge")
    reps = Replicas(kube, "kubeedge", "aaa-first")

    async def no_orphans(_: str) -> None:
        return None

    assert not reps.is_leader()  # alone in its own view, but it has not looked yet
    await reps.step(no_orphans)
    assert reps.is_leader()


async def test_ack_state_backlog_counts_the_running_flush(
    kube: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark waits for a zero backlog before its idle window: entries taken by a running flush
    are still unwritten and must count (a flush swaps its batch out of the dirty set at once)."""
    from runtime.cloud.controllers.syncstore import SyncStore
    from runtime.protocol.delivery import AckState
    from tests.fixtures.cloudctl import prepare_cluster

    await prepare_cluster(kube)
    store, state = SyncStore(kube, "kubeedge", concurrency=2), AckState()
    for i in range(40):
        state.record("bk-1", f"uid-{i}", f"default/pod/p{i}", str(i + 1))
        store.mark("bk-1", f"uid-{i}")
    # hold the real writes until the backlog was read: on a quiet machine 40 writes finish in < 50 ms
    release, write = asyncio.Event(), store._write

    async def held(name: str, entry: Any) -> None:
        await release.wait()
        await write(name, entry)

    monkeypatch.setattr(store, "_write", held)
    flush = asyncio.create_task(store.flush(state))
    await eventually_async(lambda: store.backlog, within=5, what="the backlog read")
    assert not flush.done() and store.backlog == 40  # taken out of the dirty set, in flight, not written
    release.set()
    await flush
    assert store.backlog == 0 and store.writes >= 40


async def test_lean_http_frames_chunked_and_closing_responses() -> None:
    """A plain HTTP/1.1 server answering chunked then `Connection: close`: both bodies read whole,
    the first connection reused, the closed one not."""
    replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b'HTTP/1.1 404 Not Found\r\nContent-Length: 17\r\n\r\n{"kind":"Status"}',
    ]
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        while replies:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1]
            )
            await reader.readexactly(length)
            reply = replies.pop(0)
            writer.write(reply)
            await writer.drain()
            if b"Connection: close" in reply:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = LeanHTTP(f"http://127.0.0.1:{port}", None, None, connections=1)
    try:
        assert await http.patch("/a", b'{"x":1}') == 200
        assert len(http._idle) == 1  # kept alive after a chunked body
        assert await http.create("/b", b"{}") == 201
        assert not http._idle  # the server said close
        with pytest.raises(KubeNotFound):
            await http.patch("/c", b"{}")
        assert accepted == 2 and http.requests == 3
    finally:
        await http.close()
        server.close()
        await server.wait_closed()
