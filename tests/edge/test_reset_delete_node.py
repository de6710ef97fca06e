"""`kedge reset --delete-node` (issue 24 finding 6) and the link's `since` (issue 14), against the
real CloudHub answered as the recorded cloudcore answers (tests/fixtures/edge.py).

A KubeEdge cloudcore does not delete a Node for its edge ("operation type: delete unsupported", and
no answer): reset says so at once, naming `kubectl delete node <n>`, and sends no delete at all. The
kedge cloud's side (the Node deleted on the edge's behalf) is in tests/e2e/test_cli_edges.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from runtime.edge.edgehub import EdgeHub
from runtime.edge.layout import EdgeFiles
from runtime.edge.reset import reset_edge
from runtime.kube.client import KubeClient
from runtime.protocol import Message
from tests.fixtures.edge import CloudRequests, KubeEdgeLikeHub, make_edge_root, serving
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async


async def test_delete_node_against_cloudcore_says_so_at_once(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    ctl = CloudRequests(cloud_api)
    async with serving(ctl, tls_certs.server_context(), hub_class=KubeEdgeLikeHub) as hub:
        make_edge_root(tmp_path, tls_certs, "cc-1", f"127.0.0.1:{hub.bound_port}")
        rows = await asyncio.to_thread(reset_edge, tmp_path, delete_node=True)
    [row] = [r for r in rows if r["object"] == "node cc-1"]
    assert row["result"] == "failed"
    assert "KubeEdge's cloudcore" in row["error"] and "`kubectl delete node cc-1`" in row["error"]
    assert not [m for m in ctl.requests if m.operation == "delete"], "no request cloudcore leaves unanswered"
    assert not EdgeFiles.of(tmp_path).paths.config_file.exists()  # the rest of the reset still ran


async def test_since_is_the_time_of_the_last_connect_or_disconnect(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    async def ignore(_: Message) -> None:
        return None

    ctl = CloudRequests(cloud_api)
    async with serving(ctl, tls_certs.server_context()) as cloud:
        cfg = make_edge_root(tmp_path, tls_certs, "s-1", f"127.0.0.1:{cloud.bound_port}")
        files = EdgeFiles.of(tmp_path)
        keys = {"cert": str(files.cert), "key": str(files.key), "ca": str(files.ca)}
        edge = EdgeHub(cfg.hub.server, "s-1", on_message=ignore, outbox_path=tmp_path / "o.db", **keys)
        stop = asyncio.Event()
        task = asyncio.create_task(edge.run(stop))
        try:
            await edge.wait_connected(10)
            connected_at = edge.status()["since"]
            await asyncio.sleep(0.3)  # time moves on, so the drop's `since` is later than the connect's
            before_drop = time.time()
            await cloud.stop()
            await eventually_async(lambda: not edge.status()["connected"], 10, "the link to drop")
            assert edge.status()["since"] >= before_drop > connected_at
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
