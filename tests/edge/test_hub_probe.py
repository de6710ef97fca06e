"""The `hub-port` preflight of `kedge join` tells CloudHub from other servers on the port given: a TLS
server that demands a client certificate (CloudHub — kedge's, and cloudcore's Go server with
RequireAndVerifyClientCert — with TLS 1.2 or 1.3) passes; HTTPS without one (the certificate server)
and plain HTTP fail, naming what answered. Real sockets and TLS, loopback servers on free ports."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtime.edge.join import JoinOptions, hub_protocol
from tests.fixtures.tlscerts import TLSCerts


@contextmanager
def one_connection(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback server that hands its first connection to `handle`; yields its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            handle(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        thread.join(10)
        srv.close()


def probe(port: int, root: Path) -> tuple[str, str]:
    check = hub_protocol(JoinOptions(token="x", server=f"127.0.0.1:{port}", root=root, node_name="n"))
    return check.verdict, check.detail


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_a_server_demanding_a_client_certificate_is_a_hub(
    tls_certs: TLSCerts, tmp_path: Path, version: ssl.TLSVersion
) -> None:
    ctx = tls_certs.server_context()
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.maximum_version = version

    def refuse(conn: socket.socket) -> None:
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(16)
        except (ssl.SSLError, OSError):
            pass

    with one_connection(refuse) as port:
        verdict, detail = probe(port, tmp_path)
    assert verdict == "ok" and "asks for the node certificate" in detail


def test_https_without_client_certificate_is_not_a_hub(tls_certs: TLSCerts, tmp_path: Path) -> None:
    ctx = tls_certs.server_context()
    ctx.verify_mode = ssl.CERT_NONE

    def answer_404(conn: socket.socket) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)
            tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    with one_connection(answer_404) as port:
        verdict, detail = probe(port, tmp_path)
    assert verdict == "error" and "without asking for a node certificate (HTTP 404)" in detail


def test_plain_http_is_not_a_hub(tmp_path: Path) -> None:
    def plain(conn: socket.socket) -> None:
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with one_connection(plain) as port:
        verdict, detail = probe(port, tmp_path)
    assert verdict == "error" and "not a TLS server" in detail
