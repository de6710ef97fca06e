"""Binary, truncated and oversized frames on CloudHub's websocket (real mTLS, a real CloudHub): each
refused — counted as malformed, or the connection closed 1009 for a frame over the limit — and the
same node served again right after. Text garbage, truncated JSON and floods: tests/channel/test_channel.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.protocol import encode
from tests.channel.conftest import Cloud, cloud_factory  # noqa: F401  (the fixture, by import)
from tests.channel.test_channel import raw, status
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

LIMIT = 64 * 1024


async def test_binary_truncated_and_oversized_frames_then_served(
    cloud_factory: Callable[..., Any],  # noqa: F811
    tls_certs: TLSCerts,
) -> None:
    cloud: Cloud = await cloud_factory(max_frame_bytes=LIMIT)
    ws = await raw(cloud, tls_certs, "bin")
    await eventually_async(lambda: cloud.hub.connected("bin"), what="session")
    await ws.send(b"\xff\xfe\x00\x13garbage")  # binary, not UTF-8
    await ws.send(encode(status(0)).encode()[:25])  # truncated, as bytes
    await ws.send(encode(status(1)).encode())  # a whole frame in a binary message is read as text would be
    await eventually_async(lambda: len(cloud.of("bin")) == 1, what="the binary JSON frame delivered")
    assert cloud.metric("kedge_cloudhub_malformed_frames_total") == 2
    assert cloud.hub.connected("bin")  # a good frame reset the count: the session stays
    await ws.send("x" * (LIMIT + 1))  # over the limit: the websocket layer closes with 1009
    await eventually_async(lambda: ws.close_code is not None, what="oversized frame closes the session")
    assert ws.close_code == 1009, ws.close_code
    await eventually_async(lambda: not cloud.hub.connected("bin"), what="session gone")
    again = await raw(cloud, tls_certs, "bin")  # the hub and the node are served again
    await eventually_async(lambda: cloud.hub.connected("bin"), what="reconnected")
    await again.send(encode(status(2)))
    await eventually_async(lambda: len(cloud.of("bin")) == 2, what="served after the refusal")
    await again.close()
