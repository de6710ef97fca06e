"""The engine's log stream read in large blocks and decoded a block at a time.

A container printing 100-byte lines at 5 MB/s gives ~50,000 log messages a second, and the engine
writes (and flushes) each as its own multiplexed frame in its own HTTP chunk. Read through urllib3
(``iter_content``), that is a readline, a read and a generator step per chunk on the edge's reader
thread — most of the edge's CPU for such a stream, and GIL time the pod manager's loop waits for.
Here the socket's bytes are taken as they come, up to ``BLOCK`` at a time (the response's buffered
socket file, the same one the SDK's ``CancellableStream.close`` shuts down), and one pass per block
undoes the chunked transfer coding (Dechunk) and another strips the 8-byte frame headers (demux),
with ``struct`` and slices; each block leaves as one ``bytes``. The reader never sleeps between
reads: over the engine's unix socket each one-line write is charged its own socket buffer (a few
hundred lines fill it), so a reader that paused would stall the engine's writes — batching is the
loop's (pump.py ``linger``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any

BLOCK = 256 << 10
_SIZE = struct.Struct(">4xL")  # the multiplexed frame's header: stream, 0, 0, 0, big-endian length


def raw_blocks(response: Any) -> Iterator[bytes] | None:
    """The undecoded body of a streamed ``requests`` response in blocks of at most BLOCK, or None
    when its socket file offers no ``read1`` (e.g. an SSH channel: use ``iter_content`` then)."""
    fp = getattr(getattr(response.raw, "_fp", None), "fp", None)
    if fp is None or not hasattr(fp, "read1"):
        return None

    def blocks() -> Iterator[bytes]:
        try:
            while block := fp.read1(BLOCK):
                yield block
        except (OSError, ValueError):  # the session closed the socket under the read
            return

    return blocks()


class Dechunk:
    """HTTP/1.1 chunked transfer coding undone a block at a time (``feed`` → the body bytes in it)."""

    def __init__(self) -> None:
        self.rest = b""  # an incomplete size line
        self.left = 0  # bytes of the current chunk's data still to come
        self.crlf = 0  # bytes of the CRLF after the chunk's data still to skip
        self.done = False

    def feed(self, block: bytes) -> bytes:
        data = self.rest + block if self.rest else block
        self.rest = b""
        out: list[bytes] = []
        at, end = 0, len(data)
        while at < end and not self.done:
            if self.left:
                take = min(self.left, end - at)
                out.append(data[at : at + take])
                at += take
                self.left -= take
                if not self.left:
                    self.crlf = 2
                continue
            if self.crlf:
                skip = min(self.crlf, end - at)
                at += skip
                self.crlf -= skip
                continue
            eol = data.find(b"\r\n", at)
            if eol < 0:
                self.rest = data[at:]
                break
            size = int(data[at:eol].split(b";", 1)[0], 16)
            at = eol + 2
            if size == 0:
                self.done = True
            self.left = size
        return b"".join(out)


def dechunked(blocks: Iterable[bytes]) -> Iterator[bytes]:
    decoder = Dechunk()
    for block in blocks:
        body = decoder.feed(block)
        if body:
            yield body
        if decoder.done:
            return


def demux(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Docker's multiplexed stream (8-byte header: stream, 0, 0, 0, big-endian length) → the payloads,
    those of each chunk joined (stdout and stderr alike, as kubelet's log merges them)."""
    rest = b""
    unpack = _SIZE.unpack_from
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        out: list[bytes] = []
        at, end = 0, len(data)
        while end - at >= 8:
            (size,) = unpack(data, at)
            stop = at + 8 + size
            if stop > end:
                break
            out.append(data[at + 8 : stop])
            at = stop
        rest = data[at:]
        if out:
            yield b"".join(out)
