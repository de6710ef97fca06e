"""The tunnel protocol (runtime/protocol/tunnel.py) and the cloud's Tunnels (cloud/streams/tunnels.py):
open messages, frames, paths; a link that is down, an edgecore peer, an edge that never dials back,
the cap per node."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.cloud.hub.session import SessionInfo
from runtime.cloud.streams.tunnels import NotConnected, TooManyStreams, Tunnels
from runtime.protocol import Message
from runtime.protocol.tunnel import (
    STDOUT,
    OpenRequest,
    TunnelError,
    control,
    frame,
    is_open,
    open_message,
    parse_control,
    parse_open,
    parse_stream_path,
    split,
)


def test_open_message_round_trip() -> None:
    req = OpenRequest("ab12", "logs", "default", "web", "uid-1", "app", {"follow": "true"})
    msg = open_message(req)
    assert is_open(msg) and msg.resource == "stream/ab12"
    assert parse_open(msg) == req


@pytest.mark.parametrize(
    "content",
    [{"kind": "shell", "namespace": "a", "pod": "b"}, {"kind": "logs", "pod": "b"}, "nonsense", None],
)
def test_bad_open_messages_are_refused(content: Any) -> None:
    msg = open_message(OpenRequest("ab12", "logs", "a", "b"))
    msg.content = content
    with pytest.raises(TunnelError):
        parse_open(msg)


def test_frames_and_paths() -> None:
    assert split(frame(STDOUT, b"hi")) == (STDOUT, b"hi")
    assert parse_control(split(control("exit", code=3))[1]) == {"type": "exit", "code": 3}
    for bad in (b"", "text"):
        with pytest.raises(TunnelError):
            split(bad)
    with pytest.raises(TunnelError):
        parse_control(b"{not json")
    assert parse_stream_path("/p/node-a/streams/ab12") == ("p", "node-a", "ab12")
    assert parse_stream_path("/p/node-a/events") is None
    assert parse_stream_path("/p/node-a/streams/../x") is None


class Links:
    """The hub's surface the tunnels use; ``sent`` records the open messages."""

    def __init__(self, connected: bool = True, kind: str = "kedge") -> None:
        self.up, self.kind = connected, kind
        self.sent: list[tuple[str, Message]] = []

    def connected(self, node: str) -> bool:
        return self.up

    def sessions(self) -> list[SessionInfo]:
        return [SessionInfo("n1", "p", self.kind, "1", "", "", 0.0)] if self.up else []

    async def send(self, node: str, msg: Message, *, reliable_key: str | None = None,
                   wait: float | None = None) -> bool:  # fmt: skip
        self.sent.append((node, msg))
        return self.up


async def test_a_node_without_a_link_is_refused_at_once() -> None:
    tunnels = Tunnels(Links(connected=False), open_timeout=5.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(NotConnected, match="edge node n1 is not connected"):
        await tunnels.open("n1", OpenRequest("", "logs", "default", "web"))
    assert tunnels.active() == 0
    assert loop.time() - start < 1.0  # not the open timeout: there is nothing to wait for


async def test_an_edgecore_peer_is_refused() -> None:
    tunnels = Tunnels(Links(kind="kubeedge"))
    with pytest.raises(NotConnected, match="edgecore"):
        await tunnels.open("n1", OpenRequest("", "logs", "default", "web"))


async def test_an_edge_that_does_not_dial_back_times_out_and_frees_its_slot() -> None:
    links = Links()
    tunnels = Tunnels(links, max_per_node=1, open_timeout=0.2)
    with pytest.raises(NotConnected, match=r"did not open the stream within 0\.2s"):
        await tunnels.open("n1", OpenRequest("", "logs", "default", "web"))
    assert tunnels.active("n1") == 0 and len(links.sent) == 1
    sid = links.sent[0][1].resource.split("/", 1)[1]
    assert not tunnels.expected("n1", sid)  # too late: the hub refuses the edge's dial


async def test_the_cap_per_node() -> None:
    links = Links()
    tunnels = Tunnels(links, max_per_node=2, open_timeout=5.0)
    waiting = [asyncio.ensure_future(tunnels.open("n1", OpenRequest("", "logs", "d", "p"))) for _ in range(2)]
    await asyncio.sleep(0.05)  # both sent their open message and wait for the edge
    assert tunnels.active("n1") == 2
    with pytest.raises(TooManyStreams):
        await tunnels.open("n1", OpenRequest("", "logs", "d", "p"))
    sids = [m.resource.split("/", 1)[1] for _, m in links.sent]
    assert all(tunnels.expected("n1", s) for s in sids) and not tunnels.expected("n2", sids[0])
    for w in waiting:
        w.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert tunnels.active() == 0
