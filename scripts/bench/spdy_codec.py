"""SPDY/3.1 throughput of runtime/streams, printed as one JSON line (issue 19): 100 MB through one stream,
in process.

Three forms, interleaved round by round so a noisy machine loads each alike, median of --runs:
- codec: the sans-I/O FrameWriter/FrameParser alone (32 KiB DATA frames, encode then parse);
- stream: one SpdyStream over loopback TCP, flow control on (the client announces it, windows of 64 KiB,
  WINDOW_UPDATEs as the reader consumes), the way our own client and the server talk;
- tcp: the same bytes over a bare asyncio loopback connection, the floor for `stream`.

    .venv/bin/python scripts/bench/spdy_codec.py [--mb 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from join_time import machine_facts  # noqa: E402

from runtime.streams import SpdyConnection, StreamTransport, spdy  # noqa: E402

CHUNK = 32 * 1024


def codec(total: int) -> float:
    writer, parser = spdy.FrameWriter(), spdy.FrameParser()
    block = b"\xab" * CHUNK
    got = 0
    t0 = time.perf_counter()
    for _ in range(total // CHUNK):
        parser.feed(writer.encode(spdy.DataFrame(1, block)))
        for frame in parser.frames():
            assert isinstance(frame, spdy.DataFrame)
            got += len(frame.data)
    elapsed = time.perf_counter() - t0
    assert got == total // CHUNK * CHUNK
    return elapsed


async def stream(total: int) -> float:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = SpdyConnection(StreamTransport(reader, writer), server=True)
        s = await conn.accept()
        assert s is not None
        await s.reply()
        got = 0
        while data := await s.read():
            got += len(data)
        done.set_result(got)
        await conn.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        client = SpdyConnection(StreamTransport(reader, writer), server=False, flow_control=True)
        await client.announce_flow_control()
        t0 = time.perf_counter()
        s = await client.open_stream((("streamtype", "data"),))
        block = b"\xab" * (1 << 20)
        for _ in range(total // len(block)):
            await s.write(block)
        await s.close()
        got = await done
        elapsed = time.perf_counter() - t0
        await client.close()
    assert got == total // len(block) * len(block)
    return elapsed


async def tcp(total: int) -> float:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = 0
        while data := await reader.read(256 * 1024):
            got += len(data)
        done.set_result(got)
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    async with server:
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        t0 = time.perf_counter()
        block = b"\xab" * (1 << 20)
        for _ in range(total // len(block)):
            writer.write(block)
            await writer.drain()
        writer.write_eof()
        await done
        elapsed = time.perf_counter() - t0
        writer.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    total = args.mb * 1_000_000
    times: dict[str, list[float]] = {"codec": [], "stream": [], "tcp": []}
    for _ in range(args.runs):
        times["codec"].append(codec(total))
        times["stream"].append(asyncio.run(stream(total)))
        times["tcp"].append(asyncio.run(tcp(total)))
    mbps = {k: round(args.mb / statistics.median(v), 1) for k, v in times.items()}
    out = {
        "bench": "spdy_codec",
        "mb": args.mb,
        "runs": args.runs,
        "codec_mb_s": mbps["codec"],
        "stream_mb_s": mbps["stream"],
        "tcp_mb_s": mbps["tcp"],
        "stream_vs_tcp": round(mbps["stream"] / mbps["tcp"], 3),
        **machine_facts(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
