"""Fuzz targets for the SPDY/3.1 codec and the stream parsers of runtime/streams (test_fuzz.py's style):
each parser returns or raises its typed error (SpdyError) — never another exception, never a hang.

Bounded: `max_examples` and a `deadline` per target. Input comes from peers we do not control (kubectl,
an API server, anything that reaches the stream endpoint), so these parsers are attack surface.
"""

from __future__ import annotations

import asyncio
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.streams import StreamRequest, UpgradeError, read_request, spdy
from runtime.streams.remotecommand import _ResizeParser
from runtime.streams.spdy import SpdyError

FUZZ = settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

IDS = st.integers(1, 2**31 - 1)
U32 = st.integers(0, 2**32 - 1)
HEADERS = st.lists(
    st.tuples(st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12), st.text(max_size=20)),
    max_size=5,
    unique_by=lambda kv: kv[0],
).map(tuple)
FRAME = st.one_of(
    st.builds(spdy.DataFrame, IDS, st.binary(max_size=200), st.booleans()),
    st.builds(spdy.SynStream, IDS, HEADERS, st.integers(0, 2**31 - 1), st.integers(0, 7), st.booleans()),
    st.builds(spdy.SynReply, IDS, HEADERS, st.booleans()),
    st.builds(spdy.RstStream, IDS, st.integers(0, 2**32 - 1)),
    st.builds(spdy.Settings, st.lists(st.tuples(st.integers(0, 2**24 - 1), U32), max_size=4).map(tuple)),
    st.builds(spdy.Ping, st.integers(0, 2**32 - 1)),
    st.builds(spdy.GoAway, st.integers(0, 2**31 - 1), st.integers(0, 2**32 - 1)),
    st.builds(spdy.HeadersFrame, IDS, HEADERS, st.booleans()),
    st.builds(spdy.WindowUpdate, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
)  # fmt: skip


def parse(wire: bytes) -> list[spdy.Frame]:
    parser = spdy.FrameParser(max_data=4096)
    parser.feed(wire)
    frames = parser.frames()
    parser.eof()
    return frames


@FUZZ
@given(st.binary(max_size=400))
def test_frame_parser_on_random_bytes(wire: bytes) -> None:
    try:
        parse(wire)
    except SpdyError:
        pass


@FUZZ
@given(st.lists(FRAME, min_size=1, max_size=5))
def test_frames_round_trip(frames: list[spdy.Frame]) -> None:
    writer = spdy.FrameWriter()
    assert parse(b"".join(writer.encode(f) for f in frames)) == frames


@FUZZ
@given(st.lists(FRAME, min_size=1, max_size=4), st.data())
def test_frame_parser_on_mutated_frames(frames: list[spdy.Frame], data: st.DataObject) -> None:
    """Valid frames with bytes flipped, cut or inserted: the parser notices or parses something."""
    wire = bytearray(b"".join(spdy.FrameWriter().encode(f) for f in frames))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            wire[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del wire[at:]
            if not wire:
                break
        else:
            wire[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        parse(bytes(wire))
    except SpdyError:
        pass


@FUZZ
@given(st.binary(max_size=300) | HEADERS.map(spdy.encode_header_block))
def test_header_block_decoder(raw: bytes) -> None:
    try:
        headers = spdy.decode_header_block(raw)
    except SpdyError:
        return
    assert spdy.decode_header_block(spdy.encode_header_block(headers)) == headers


@FUZZ
@given(st.binary(max_size=300))
def test_compressed_header_blocks(block: bytes) -> None:
    wire = struct.pack(">HHI", 0x8003, spdy.SYN_REPLY, 4 + len(block)) + struct.pack(">I", 1) + block
    try:
        parse(wire)
    except SpdyError:
        pass


@FUZZ
@given(st.lists(st.binary(max_size=40) | st.just(b'{"Width":80,"Height":24}'), max_size=6))
def test_resize_stream_parser(chunks: list[bytes]) -> None:
    parser = _ResizeParser()
    for chunk in chunks:
        for size in parser.feed(chunk):
            assert isinstance(size.width, int) and isinstance(size.height, int)


REQUEST_PARTS = st.sampled_from(
    [b"GET ", b"POST ", b"/exec?command=x&stdin=1", b" HTTP/1.1\r\n", b"Host: a\r\n",
     b"Upgrade: SPDY/3.1\r\n", b"Connection: Upgrade\r\n", b"X-Stream-Protocol-Version: v4\r\n",
     b"\r\n", b":", b"\x00", b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n", b"%zz",
     b"?a=%", b" "]
)  # fmt: skip


@FUZZ
@given(st.lists(REQUEST_PARTS, max_size=12).map(b"".join) | st.binary(max_size=200))
def test_stream_request_head(data: bytes) -> None:
    """What reaches the stream endpoint first: a request head, or UpgradeError (never a hang: EOF ends it)."""

    async def read() -> StreamRequest | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        try:
            return await read_request(reader, head_wait=5)
        except UpgradeError:
            return None

    request = asyncio.run(read())
    if request is not None:
        assert request.method and isinstance(request.query, dict)
