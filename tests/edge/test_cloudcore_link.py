"""kedge's edge on cloudcore's link (issue 24, findings 1 and 2), against the recorded-cloudcore peer
(tests/fixtures/cloudcore.py): the upgrade carries ``ConnectionUse: msg``, the Certificate message
holds the node's certificate alone, and a link on which requests go unanswered is dropped and
redialled with the reason in the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime.edge.dial import ClientTLS
from runtime.edge.edgehub import EdgeHub
from runtime.edge.run import EdgeRuntime
from runtime.errors import Unreachable
from runtime.kube.client import KubeClient
from runtime.protocol import Message, new_message
from tests.fixtures.cloudcore import ChainSpy, cloudcore_peer, tls12_only
from tests.fixtures.edge import (
    RecordedCloud,
    make_edge_root,
    recording_edgehub,
    running,
)
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async


class Sink:
    """A test edge's record (tests.fixtures.edge.Recording)."""

    def __init__(self) -> None:
        self.hub: EdgeHub
        self.received: list[Message] = []
        self.auto_ack = True


@contextlib.asynccontextmanager
async def hub_running(server: str, node: str, tmp_path: Path, **kw: Any) -> AsyncIterator[EdgeHub]:
    """A test EdgeHub (``kw``: ssl_context, overrides) running for the block, connected on entry."""
    sink = Sink()
    sink.hub = hub = recording_edgehub(server, node, lambda: sink, outbox_path=tmp_path / "o.db", **kw)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    try:
        await hub.wait_connected(10)
        yield hub
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def lease_query(node: str) -> Message:
    return new_message("edged", "meta", "query", f"kube-node-lease/lease/{node}", None)


@pytest.mark.timeout(60)
async def test_edge_gets_answers_from_cloudcore(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """cloudcore reads a session only with ``ConnectionUse: msg`` and only when the client chain is the
    leaf alone; both hold, so the node registers and gets Ready through it."""
    async with cloudcore_peer(tls_certs.server_context(), cloud_api) as peer:
        cfg = make_edge_root(tmp_path, tls_certs, "cc-1", peer.server)
        async with running(EdgeRuntime(cfg, tmp_path, pods=False, lease_every=0.3)) as rt:
            await eventually_async(lambda: rt.node is not None and rt.node.ready_in_cloud, 15, "node Ready")
            await eventually_async(lambda: rt.node is not None and rt.node.lease_renewed, 10, "lease renewed")
        assert peer.refused == [], peer.refused
        assert peer.upgrades[-1]["ConnectionUse"] == "msg"
        assert peer.upgrades[-1]["node_id"] == "cc-1"
        session_chains = [n for n in peer.spy.chains.values() if n == 1]
        assert session_chains, f"no session sent its certificate alone: {peer.spy.chains}"


async def test_certificate_message_holds_the_leaf_alone(tls_certs: TLSCerts, tmp_path: Path) -> None:
    """On the wire (a real TLS 1.2 server behind the spy): the old single context (CA in its verify
    store) sends leaf + CA; the link context of ClientTLS sends the leaf alone and the cloud is still
    verified — by the probe, with the CA and the host name, and refused with a foreign CA."""
    pair = tls_certs.client("chain-1")
    server_ctx = tls12_only(tls_certs.server_context())

    async def serve_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.read(1)
        writer.close()

    server = await asyncio.start_server(serve_tls, "127.0.0.1", 0, ssl=server_ctx)
    spy = ChainSpy(int(server.sockets[0].getsockname()[1]))
    await spy.start()
    seen: set[int] = set()  # relay ports already looked at
    try:

        async def chain_of(ctx: ssl.SSLContext) -> int | None:
            _, w = await asyncio.open_connection("127.0.0.1", spy.port, ssl=ctx, server_hostname="127.0.0.1")
            await eventually_async(lambda: any(spy.chains.get(p) for p in set(spy.chains) - seen), 5, "chain")
            port = next(p for p in set(spy.chains) - seen if spy.chains.get(p))
            seen.add(port)
            w.close()
            return spy.chains[port]

        tls = ClientTLS(str(pair.cert), str(pair.key), str(tls_certs.ca))
        assert await chain_of(tls.verify_context()) == 2  # what OpenSSL sends with the CA in the same context
        assert await chain_of(tls.link) == 1  # the session's: the node's certificate alone
        _, w = await asyncio.open_connection("127.0.0.1", spy.port, ssl=tls.link, server_hostname="127.0.0.1")
        peer_der = w.get_extra_info("ssl_object").getpeercert(binary_form=True)
        w.close()
        await tls.check(peer_der, "127.0.0.1", spy.port, 5.0)  # verified with the CA and host name
        assert len(tls.trusted) == 1
        foreign = ClientTLS(str(pair.cert), str(pair.key), str(tls_certs.client("x", other_ca=True).cert))
        with pytest.raises(ssl.SSLCertVerificationError):
            await foreign.check(peer_der, "127.0.0.1", spy.port, 5.0)
    finally:
        await spy.stop()
        server.close()


def openssl_certificate_list(tls_certs: TLSCerts, ctx: ssl.SSLContext) -> tuple[int, int]:
    """Handshake with ``openssl s_server -msg`` (TLS 1.2, client certificate required) and read the
    client's Certificate message from its dump: (list length, first certificate's length)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(tls_certs.server.cert),
         "-key", str(tls_certs.server.key), "-CAfile", str(tls_certs.ca), "-Verify", "1", "-tls1_2",
         "-msg", "-naccept", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not (line := proc.stdout.readline()).startswith("ACCEPT"):
            assert line, "openssl s_server ended: " + "".join(lines)
            lines.append(line)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            conn.sendall(b"x\n")
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    dump = out.splitlines()
    at = next(i for i, line in enumerate(dump) if line.startswith("<<<") and line.endswith(", Certificate"))
    body = bytes.fromhex("".join(dump[at + 1 : at + 3]).replace(" ", ""))[4:]  # after type + length
    return int.from_bytes(body[:3], "big"), int.from_bytes(body[3:6], "big")


def test_openssl_s_server_sees_one_certificate(tls_certs: TLSCerts) -> None:
    """A real TLS peer other than Python's: ``openssl s_server -msg`` dumps the client's Certificate
    message — the link context's list holds exactly one certificate, the CA-holding context's two."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot run s_server")
    pair = tls_certs.client("ossl-1")
    tls = ClientTLS(str(pair.cert), str(pair.key), str(tls_certs.ca))
    total, first = openssl_certificate_list(tls_certs, tls.link)
    assert total == 3 + first, f"more than one certificate: list {total:#x} bytes, first {first:#x}"
    total, first = openssl_certificate_list(tls_certs, tls.verify_context())
    assert total > 3 + first + 3  # leaf + CA: what cloudcore refuses


async def test_unanswered_link_is_dropped_and_redialled(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """The old context (CA in the verify store) sends a two-certificate chain: cloudcore takes the
    session and answers nothing. The edge must not call that connected: after ``answer_within`` s it
    drops the link, redials, and its status says why."""
    pair = tls_certs.client("mute-1")
    async with (
        cloudcore_peer(tls_certs.server_context(), cloud_api) as peer,
        hub_running(
            peer.server,
            "mute-1",
            tmp_path,
            ssl_context=tls_certs.client_context(pair),  # CA + leaf in one context: chain of 2
            answer_within=1.0,
        ) as hub,
    ):
        with pytest.raises(Unreachable):
            await hub.request(lease_query("mute-1"), 0.5)
        await eventually_async(lambda: hub.status()["unanswered_drops"] >= 1, 10, "dropped for no answer")
        st = hub.status()
        assert "answered no request" in st["last_error"], st
        await eventually_async(lambda: len(peer.upgrades) >= 2, 10, "redialled")
        assert all("intermediate certificates" in r for r in peer.refused)


async def test_session_without_connectionuse_is_never_read(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    """What cloudcore does with a session lacking ``ConnectionUse: msg``, and what kedge now sends:
    the same edge request is answered only with the header."""
    pair = tls_certs.client("cu-1")
    tls = ClientTLS(str(pair.cert), str(pair.key), str(tls_certs.ca))
    async with (
        cloudcore_peer(tls_certs.server_context(), cloud_api, drop_after=3.0) as peer,
        hub_running(peer.server, "cu-1", tmp_path, ssl_context=tls) as hub,
    ):
        assert hub.headers()["ConnectionUse"] == "msg"
        resp = await hub.request(lease_query("cu-1"), 5)
        assert resp.content["Err"]["ErrStatus"]["code"] == 404  # answered: the lease is not there
        # the peer holds cloudcore's rule: the same edge without the header is never answered
        headerless = {k: v for k, v in hub.headers().items() if k != "ConnectionUse"}
        hub.headers = lambda: headerless  # type: ignore[method-assign]  # an edge before the fix
        assert peer.session is not None
        await peer.session.close()  # the edge redials, now without the header
        await eventually_async(lambda: len(peer.upgrades) >= 2 and hub.connected, 10, "redialled")
        with pytest.raises(Unreachable):
            await hub.request(lease_query("cu-1"), 1)
        assert peer.refused and set(peer.refused) == {"no ConnectionUse: msg"}  # one per redial


async def test_kedge_cloud_logs_the_certificate_probe_quietly(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe closes after TLS, before HTTP: kedge's own CloudHub logs that at debug, not as an
    "opening handshake failed" error with a traceback for every edge that starts."""
    caplog.set_level(logging.DEBUG, logger="kedge.cloudhub")
    pair = tls_certs.client("probe-1")
    tls = ClientTLS(str(pair.cert), str(pair.key), str(tls_certs.ca))
    async with hub_running(recorded_cloud.server, "probe-1", tmp_path, ssl_context=tls) as hub:
        pass
    assert isinstance(hub.ssl_context, ClientTLS) and len(hub.ssl_context.trusted) == 1
    failed = [r for r in caplog.records if r.getMessage() == "opening handshake failed"]
    assert failed and all(r.levelno == logging.DEBUG for r in failed), [r.levelname for r in failed]


async def test_renewed_certificate_is_presented_by_both_contexts(tls_certs: TLSCerts, tmp_path: Path) -> None:
    """Certificate renewal rewrites the node's files; ``reload`` (EdgeHub.reload_identity) makes the
    next handshake of the link and of the probe present the new certificate."""
    first = tls_certs.client("renew-1")
    cert, key = tmp_path / "node.crt", tmp_path / "node.key"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    renewed = tls_certs.client("renew-1")  # same files in the test PKI: read them only after this
    seen: list[str] = []

    async def serve_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(str(writer.get_extra_info("peercert")["serialNumber"]))
        writer.close()

    server = await asyncio.start_server(serve_tls, "127.0.0.1", 0, ssl=tls_certs.server_context())
    port = int(server.sockets[0].getsockname()[1])
    tls = ClientTLS(str(cert), str(key), str(tls_certs.ca))

    async def serial_seen(ctx: ssl.SSLContext) -> str:
        _, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
        await eventually_async(lambda: seen, 5, "handshake seen")
        w.close()
        return seen.pop()

    try:
        before = await serial_seen(tls.link)
        cert.write_bytes(renewed.cert.read_bytes())
        key.write_bytes(renewed.key.read_bytes())
        tls.reload()
        after_link, after_probe = await serial_seen(tls.link), await serial_seen(tls.verify_context())
        assert before != after_link and after_link == after_probe
    finally:
        server.close()
