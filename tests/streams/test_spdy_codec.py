"""runtime/streams/spdy.py: every frame type round-trips, header blocks use the SPDY/3 dictionary that Go's
spdystream uses (a block recorded from kubectl 1.32 decodes), window accounting, and bad input raises
SpdyError — never hangs, never another exception."""

from __future__ import annotations

import struct
import zlib

import pytest

from runtime.streams import spdy
from runtime.streams.spdy import SpdyError

# The header block of kubectl 1.32's first SYN_STREAM of an exec (streamType: error), as sent on the wire:
# zlib with dictionary id 0xe3c6a7c2, compressed by Go's compress/zlib (BestCompression) + sync flush.
KUBECTL_BLOCK = bytes.fromhex("78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff")

FRAMES: list[spdy.Frame] = [
    spdy.SynStream(1, (("streamtype", "error"), ("port", "8080"), ("requestid", "0")), priority=3),
    spdy.SynStream(3, (("a", "b\x00c"),), associated_id=1, fin=True, unidirectional=True),
    spdy.SynReply(1, ()),
    spdy.SynReply(3, (("x", "y"),), fin=True),
    spdy.DataFrame(1, b"hello"),
    spdy.DataFrame(1, b"", fin=True),
    spdy.DataFrame(2**31 - 1, b"\x00" * 70000),
    spdy.RstStream(5, spdy.CANCEL),
    spdy.Settings(((spdy.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), (4, 100))),
    spdy.Settings((), clear=True),
    spdy.Ping(1),
    spdy.Ping(2**32 - 2),
    spdy.GoAway(7, spdy.GOAWAY_PROTOCOL_ERROR),
    spdy.HeadersFrame(1, (("k", "v"),), fin=True),
    spdy.WindowUpdate(0, 65536),
    spdy.WindowUpdate(9, 2**31 - 1),
]


def test_every_frame_type_round_trips_through_one_compression_context() -> None:
    writer, parser = spdy.FrameWriter(), spdy.FrameParser()
    wire = b"".join(writer.encode(f) for f in FRAMES)
    parser.feed(wire)
    assert parser.frames() == FRAMES
    parser.eof()  # nothing left over


def test_frames_split_at_every_byte_still_parse() -> None:
    writer, parser = spdy.FrameWriter(), spdy.FrameParser()
    wire = b"".join(writer.encode(f) for f in FRAMES[:6])
    got: list[spdy.Frame] = []
    for i in range(len(wire)):
        parser.feed(wire[i : i + 1])
        got += parser.frames()
    assert got == FRAMES[:6]


def test_dictionary_is_the_one_go_spdystream_uses() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2  # the DICTID in every Go-compressed header block
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options") and spdy.DICTIONARY.endswith(b"enq=0.")


def test_a_header_block_recorded_from_kubectl_decodes() -> None:
    body = struct.pack(">IIBB", 1, 0, 0, 0) + KUBECTL_BLOCK
    parser = spdy.FrameParser()
    parser.feed(struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(body)) + body)
    assert parser.frames() == [spdy.SynStream(1, (("streamtype", "error"),))]


def test_our_header_blocks_carry_the_same_dictionary_id() -> None:
    frame = spdy.FrameWriter().encode(spdy.SynReply(1, (("a", "b"),)))
    assert frame[12:14] == b"\x78\xbb" or frame[12] == 0x78  # zlib header with FDICT
    assert frame[12 + 2 : 12 + 6] == struct.pack(">I", 0xE3C6A7C2)


def test_header_names_are_lowercased_and_decoded_in_order() -> None:
    raw = spdy.encode_header_block((("StreamType", "data"), ("Port", "80")))
    assert spdy.decode_header_block(raw) == (("streamtype", "data"), ("port", "80"))


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x00\x00", "truncated count"),
        (struct.pack(">I", 1) + struct.pack(">I", 5) + b"ab", "truncated string"),
        (struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", 9) + b"b" * 4, "truncated"),
        (spdy.encode_header_block((("a", "1"),)) + b"x", "trailing"),
        (struct.pack(">I", 2) + (struct.pack(">I", 1) + b"a" + struct.pack(">I", 0)) * 2, "duplicate"),
        (struct.pack(">I", 1) + struct.pack(">I", 1) + b"A" + struct.pack(">I", 0), "lower case"),
        (struct.pack(">I", 1) + struct.pack(">I", 0) + struct.pack(">I", 0), "empty"),
        (struct.pack(">I", 1) + struct.pack(">I", 1) + b"\xff" + struct.pack(">I", 0), "UTF-8"),
        (struct.pack(">I", 2**31), "pairs in"),
    ],
)
def test_bad_header_blocks_raise(raw: bytes, why: str) -> None:
    with pytest.raises(SpdyError, match=why):
        spdy.decode_header_block(raw)


def _control(kind: int, body: bytes, version: int = 3, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8000 | version, kind, (flags << 24) | len(body)) + body


@pytest.mark.parametrize(
    ("wire", "status"),
    [
        (_control(spdy.PING, b"\x00\x00\x00\x01", version=2), spdy.UNSUPPORTED_VERSION),
        (_control(spdy.PING, b"\x00\x01"), spdy.PROTOCOL_ERROR),  # short PING
        (_control(spdy.RST_STREAM, b"\x00" * 9), spdy.PROTOCOL_ERROR),
        (_control(spdy.SETTINGS, struct.pack(">I", 3) + b"\x00" * 8), spdy.PROTOCOL_ERROR),
        (_control(spdy.SYN_STREAM, b"\x00" * 10 + b"not zlib"), spdy.PROTOCOL_ERROR),
        (_control(spdy.SYN_STREAM, struct.pack(">IIBB", 0, 0, 0, 0) + KUBECTL_BLOCK), spdy.PROTOCOL_ERROR),
        (struct.pack(">II", 0, 3) + b"abc", spdy.PROTOCOL_ERROR),  # DATA on stream 0
        (struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, spdy.MAX_CONTROL_LENGTH + 1), spdy.FRAME_TOO_LARGE),
    ],
)
def test_malformed_frames_raise_with_the_status_to_answer(wire: bytes, status: int) -> None:
    parser = spdy.FrameParser()
    parser.feed(wire)
    with pytest.raises(SpdyError) as err:
        parser.frames()
    assert err.value.status == status


def test_oversized_data_frames_raise_before_the_payload_arrives() -> None:
    parser = spdy.FrameParser(max_data=1024)
    parser.feed(struct.pack(">II", 1, 1025))  # only the header: the length alone decides
    with pytest.raises(SpdyError, match="too large"):
        parser.frames()


def test_a_header_bomb_stops_at_the_cap() -> None:
    block = struct.pack(">I", 1) + struct.pack(">I", 1) + b"a" + struct.pack(">I", spdy.MAX_HEADER_BYTES)
    block += b"a" * spdy.MAX_HEADER_BYTES
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zdict=spdy.DICTIONARY)
    compressed = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    assert len(compressed) < spdy.MAX_CONTROL_LENGTH  # fits in a frame, inflates past the cap
    parser = spdy.FrameParser()
    parser.feed(_control(spdy.SYN_REPLY, struct.pack(">I", 1) + compressed))
    with pytest.raises(SpdyError, match="larger than"):
        parser.frames()


def test_truncated_input_is_an_error_at_eof_not_a_hang() -> None:
    wire = spdy.FrameWriter().encode(spdy.DataFrame(1, b"abcdef"))
    parser = spdy.FrameParser()
    parser.feed(wire[:-2])
    assert parser.frames() == []  # waits for more
    with pytest.raises(SpdyError, match="inside a frame"):
        parser.eof()


def test_unknown_control_frames_are_ignored() -> None:
    parser = spdy.FrameParser()
    parser.feed(_control(0x0A, b"xyz") + spdy.FrameWriter().encode(spdy.Ping(1)))
    assert parser.frames() == [spdy.Ping(1)]


def test_window_accounting() -> None:
    send = spdy.FlowWindow()
    send.spend(60000)
    assert send.available == spdy.DEFAULT_WINDOW - 60000
    send.grow(60000)
    assert send.available == spdy.DEFAULT_WINDOW
    send.resize(1 << 20)  # SETTINGS_INITIAL_WINDOW_SIZE applies the difference
    assert send.available == 1 << 20
    with pytest.raises(SpdyError) as err:
        send.grow(spdy.MAX_WINDOW)
    assert err.value.status == spdy.FLOW_CONTROL_ERROR
    with pytest.raises(SpdyError):
        send.grow(0)

    recv = spdy.FlowWindow()
    recv.receive(spdy.DEFAULT_WINDOW)
    with pytest.raises(SpdyError) as err:
        recv.receive(1, stream_id=3)
    assert (err.value.status, err.value.stream_id) == (spdy.FLOW_CONTROL_ERROR, 3)
    assert recv.consume(1000) == 0  # batched until half a window is consumed
    assert recv.consume(spdy.DEFAULT_WINDOW // 2) == spdy.DEFAULT_WINDOW // 2 + 1000
    assert recv.available == spdy.DEFAULT_WINDOW // 2 + 1000
    recv.receive(10**6, strict=False)  # a peer without flow control (spdystream) is tolerated when asked


def test_writer_refuses_frames_it_cannot_encode() -> None:
    with pytest.raises(SpdyError):
        spdy.FrameWriter().encode(spdy.DataFrame(0, b"x"))
