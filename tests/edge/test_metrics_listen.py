"""The edge's TCP /metrics (issue 20): on 127.0.0.1 by default, configurable, and a taken port costs
only the TCP listener — never the runtime (several edges share a machine)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from runtime.config import DEFAULT_EDGE_METRICS, EdgeConfig
from runtime.edge.metrics import EdgeMetrics
from runtime.edge.statusd import StatusServer, query


async def _status() -> dict[str, object]:
    return {"role": "edge"}


def _get(address: str, path: str) -> tuple[int, bytes]:
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_default_is_loopback_only() -> None:
    assert EdgeConfig().metrics_address == DEFAULT_EDGE_METRICS
    assert DEFAULT_EDGE_METRICS.startswith("127.0.0.1:")


async def test_a_bare_port_binds_loopback_and_serves_metrics(tmp_path: Path) -> None:
    server = StatusServer(tmp_path / "s.sock", _status, EdgeMetrics(dict), tcp=":0")
    await server.start()
    try:
        assert server.tcp_address.startswith("127.0.0.1:")
        code, body = await asyncio.to_thread(_get, server.tcp_address, "/metrics")
        assert code == 200 and b"kedge_edge_cloud_connected" in body
    finally:
        await server.stop()


async def test_a_taken_port_leaves_the_socket_serving(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = StatusServer(tmp_path / "s.sock", _status, EdgeMetrics(dict),
                              tcp=f"127.0.0.1:{port}")  # fmt: skip
        await server.start()
        try:
            assert server.tcp_address == ""
            code, body = await asyncio.to_thread(query, tmp_path / "s.sock", "/metrics")
            assert code == 200 and b"kedge_edge_cloud_connected" in body
        finally:
            await server.stop()
