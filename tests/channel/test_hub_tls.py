"""mTLS and handshake refusals: real TLS, real websockets, the real CloudHub and EdgeHub."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime.edge.edgehub import Failure, classify
from tests.channel.conftest import Cloud
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

PROJECT = "e632aba927ea4ac2b575ec1603d56f10"


async def dial(
    cloud: Cloud,
    ctx: ssl.SSLContext,
    node: str,
    headers: dict[str, str] | None = None,
    path_node: str | None = None,
) -> None:
    url = f"wss://{cloud.address}/{PROJECT}/{path_node or node}/events"
    async with connect(
        url, ssl=ctx, additional_headers=headers or {"node_id": node}, open_timeout=5, proxy=None
    ):
        pass


async def test_edge_connects_and_is_identified(cloud: Cloud, edge_factory: Callable[..., Any]) -> None:
    edge = await edge_factory("edge-1", cloud.address, epoch="ep-1")
    await eventually_async(lambda: cloud.hub.connected("edge-1"), what="session")
    (info,) = cloud.hub.sessions()
    assert (info.node, info.peer_kind, info.epoch, info.project_id) == ("edge-1", "kedge", "ep-1", PROJECT)
    assert info.version
    await eventually_async(lambda: edge.hub.status()["connected"], what="edge connected")
    st = edge.hub.status()
    assert st["peer_kind"] == "kedge" and st["reconnects"] == 0 and st["auth_error"] == ""
    assert cloud.metric("kedge_cloudhub_connected_edges") == 1
    assert cloud.connects[0].node == "edge-1"


@pytest.mark.parametrize("case", ["no_cert", "other_ca", "expired"])
async def test_tls_refusals(cloud: Cloud, tls_certs: TLSCerts, case: str) -> None:
    pair = {
        "no_cert": None,
        "other_ca": tls_certs.client("edge-x", other_ca=True),
        "expired": tls_certs.client("edge-x", expired=True),
    }[case]
    with pytest.raises(Exception) as info:
        await dial(cloud, tls_certs.client_context(pair), "edge-x")
    assert classify(info.value) is Failure.AUTH, repr(info.value)
    assert not cloud.hub.sessions()


async def test_node_id_header_must_match_certificate(cloud: Cloud, tls_certs: TLSCerts) -> None:
    ctx = tls_certs.client_context(tls_certs.client("edge-a"))
    with pytest.raises(InvalidStatus) as info:
        await dial(cloud, ctx, "edge-a", headers={"node_id": "edge-b"})
    assert info.value.response.status_code == 403
    assert classify(info.value) is Failure.AUTH
    with pytest.raises(InvalidStatus) as info:
        await dial(cloud, ctx, "edge-a", path_node="edge-b")
    assert info.value.response.status_code == 403
    assert cloud.metric("kedge_cloudhub_refused_handshakes_total", reason="node_mismatch") == 2
    # A certificate that is not a node's (CN without system:node:) is refused too.
    with pytest.raises(InvalidStatus) as info:
        await dial(cloud, tls_certs.client_context(tls_certs.client("edge-a", cn="admin")), "edge-a")
    assert info.value.response.status_code == 403
    await dial(cloud, ctx, "edge-a")  # the matching one is accepted
    assert not cloud.hub.sessions() or cloud.hub.sessions()[0].node == "edge-a"


async def test_edgehub_surfaces_auth_error_and_keeps_retrying(
    cloud: Cloud, tls_certs: TLSCerts, edge_factory: Callable[..., Any]
) -> None:
    edge = await edge_factory("edge-exp", cloud.address, pair=tls_certs.client("edge-exp", expired=True))
    await eventually_async(lambda: edge.hub.status()["auth_error"], what="auth error in status")
    st = edge.hub.status()
    assert not st["connected"]
    assert edge.hub.auth_failure is not None and "edge-exp" in str(edge.hub.auth_failure)
    await asyncio.sleep(0.6)  # the thing under test: it keeps retrying for a while
    assert not edge.task.done()  # still retrying with the capped backoff
    assert st["backoff"] is None or st["backoff"] <= 0.5
