"""The edge's stream plumbing without Docker: the multiplexed-log splitter and the thread pump."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from runtime.edge.streams.bulk import dechunked, demux
from runtime.edge.streams.pump import pumped


def frame(stream: int, data: bytes) -> bytes:
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


def test_demux_splits_frames_across_chunk_boundaries() -> None:
    raw = frame(1, b"line one\n") + frame(2, b"err\n") + frame(1, b"x" * 70_000)
    pieces = [raw[i : i + 7] for i in range(0, len(raw), 7)]  # headers and payloads cut anywhere
    assert b"".join(demux(pieces)) == b"line one\nerr\n" + b"x" * 70_000
    assert list(demux([frame(1, b"a") + frame(1, b"b")])) == [b"ab"]  # one chunk's frames joined


def chunked(*bodies: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in bodies) + b"0\r\n\r\n"


def test_dechunk_undoes_the_transfer_coding_cut_anywhere() -> None:
    bodies = [frame(1 + i % 2, b"line %d\n" % i) for i in range(300)] + [frame(1, b"y" * 70_000)]
    raw = chunked(*bodies).replace(b"\r\n", b";ext=1\r\n", 1) + b"after the last chunk"
    for step in (1, 2, 7, 4096, len(raw)):
        pieces = [raw[i : i + step] for i in range(0, len(raw), step)]
        assert b"".join(dechunked(pieces)) == b"".join(bodies)  # nothing of what follows the end
    both = list(demux(dechunked([raw])))
    assert both == [b"".join(b"line %d\n" % i for i in range(300)) + b"y" * 70_000]


async def test_pump_hands_everything_over_in_order_and_batches() -> None:
    lines = [f"line {i}\n".encode() for i in range(20_000)]
    got = [chunk async for chunk in pumped(lambda: iter(lines), lambda: None, join=b"".join, depth=64)]
    assert b"".join(got) == b"".join(lines)
    assert len(got) < len(lines)  # batched: fewer hand-overs than lines


async def test_pump_raises_the_producers_error() -> None:
    def broken() -> Iterator[bytes]:
        yield b"first"
        raise OSError("engine went away")

    seen = []
    with pytest.raises(OSError, match="engine went away"):
        async for chunk in pumped(broken, lambda: None):
            seen.append(chunk)
    assert seen == [b"first"]


async def test_leaving_early_cancels_the_blocked_producer() -> None:
    released = threading.Event()

    def endless() -> Iterator[bytes]:
        yield b"hello"
        released.wait(30)  # a follow of a quiet container: blocked in recv until cancelled
        yield b"after"

    async with contextlib.aclosing(pumped(endless, released.set)) as chunks:  # as the sessions close it
        async for chunk in chunks:
            assert chunk == b"hello"
            break
    assert released.is_set()
