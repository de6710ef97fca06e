"""The connection to a kubelet (for kedge edges: the cloud's stream endpoint): TLS with this server's
kubelet-client certificate, the request sent, the response head read (h11) — and, when that fails,
one clear `error dialing backend "https://host:port": <cause>` (kube-apiserver's words for a failed
dial) instead of whatever layer noticed first.

A server refusing the client certificate is the failure worth naming: a Go server (a kubelet) sends
its alert (`remote error: tls: unknown certificate authority`, as Go prints it); an asyncio server (a
kedge cloud's stream endpoint) drops the connection without one, during the handshake (TLS 1.2) or
right after it, before answering (TLS 1.3, where the client's certificate is checked after the
client considers the handshake done). Either way the message says which certificate this server
presented, so the operator knows what the endpoint must trust.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import h11
from cryptography import x509
from cryptography.x509.oid import NameOID

from runtime.apiserver.http.status_errors import StatusError

CHUNK = 64 << 10
CONNECT_TIMEOUT, ANSWER_TIMEOUT = 10.0, 30.0
GO_ALERTS = {"unknown ca": "unknown certificate authority"}  # OpenSSL's alert names where Go differs


@dataclass(frozen=True)
class KubeletClient:
    """The TLS context this server dials kubelets with and who it says it is there."""

    ssl_context: ssl.SSLContext
    identity: str  # `CN "…" issued by "…"`, for error messages

    @classmethod
    def load(cls, cert: Path, key: Path) -> KubeletClient:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # kube-apiserver without --kubelet-certificate-authority
        ctx.load_cert_chain(cert, key)
        parsed = x509.load_pem_x509_certificate(cert.read_bytes())
        return cls(ctx, f'CN "{_cn(parsed.subject)}" issued by "{_cn(parsed.issuer)}"')


def _cn(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()


class ClosedBeforeAnswer(ConnectionError):
    """The kubelet closed the connection before its response head."""


class Upstream:
    """One connection to the kubelet: the request sent, the response head read (h11)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)
        self.response: h11.Response | h11.InformationalResponse | None = None

    async def request(self, method: str, path: str, headers: list[tuple[str, str]]) -> None:
        self.writer.write(self.conn.send(h11.Request(method=method, target=path, headers=headers)) or b"")
        self.writer.write(self.conn.send(h11.EndOfMessage()) or b"")
        await self.writer.drain()
        while self.response is None:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(CHUNK)
                if not data and not self.conn.trailing_data[0]:
                    raise ClosedBeforeAnswer()
                self.conn.receive_data(data)
            elif isinstance(event, h11.Response | h11.InformationalResponse):
                self.response = event
            else:
                raise ConnectionError(f"kubelet answered {event!r}")

    async def body(self, limit: int = 64 << 10) -> bytes:
        out = b""
        while len(out) < limit:
            event = await self.next_data()
            if event is None:
                break
            out += event
        return out

    async def next_data(self) -> bytes | None:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(CHUNK))
            elif isinstance(event, h11.Data):
                return bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return None

    def close(self) -> None:
        self.writer.close()


async def connect(
    client: KubeletClient, host: str, port: int, method: str, path: str, headers: list[tuple[str, str]]
) -> Upstream:
    """The request sent and the answer's head read; StatusError 500 with the cause otherwise."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=client.ssl_context), CONNECT_TIMEOUT
        )
    except Exception as exc:
        raise _failed(authority, _dial_cause(exc, authority, client)) from exc
    up = Upstream(reader, writer)
    try:
        await asyncio.wait_for(up.request(method, path, [("Host", authority), *headers]), ANSWER_TIMEOUT)
    except (ClosedBeforeAnswer, ConnectionResetError, BrokenPipeError) as exc:  # an EOF or an RST
        up.close()
        cause = "the endpoint closed the TLS connection before answering"
        raise _failed(authority, f"{cause}{_refused(client)}") from exc
    except Exception as exc:
        up.close()
        raise _failed(authority, _answer_cause(exc, client)) from exc
    return up


def _failed(authority: str, cause: str) -> StatusError:
    return StatusError(500, "InternalError", f'error dialing backend "https://{authority}": {cause}')


def _refused(client: KubeletClient, alerted: bool = False) -> str:
    """What this server presented; without an alert, why a silent close points at it."""
    lead = "" if alerted else ", as a TLS server does when it refuses the client certificate"
    presented = f"this API server presents its kubelet client certificate ({client.identity})"
    return f"{lead}; {presented}, which the endpoint must trust"


def _tls_cause(exc: ssl.SSLError, client: KubeletClient) -> str:
    reason = str(exc.reason or "")
    if "ALERT_" in reason:  # the peer's alert, in Go's words
        alert = reason.split("ALERT_", 1)[1].lower().replace("_", " ")
        hint = _refused(client, alerted=True) if "cert" in alert or alert == "unknown ca" else ""
        return f"remote error: tls: {GO_ALERTS.get(alert, alert)}{hint}"
    return f"tls: {(exc.reason or str(exc)).lower().replace('_', ' ')}"


def _dial_cause(exc: Exception, authority: str, client: KubeletClient) -> str:
    if isinstance(exc, ssl.SSLError):
        return _tls_cause(exc, client)
    if isinstance(exc, ConnectionResetError | asyncio.IncompleteReadError):
        return f"the endpoint closed the connection during the TLS handshake{_refused(client)}"
    if isinstance(exc, TimeoutError):
        return f"dial tcp {authority}: i/o timeout"
    if isinstance(exc, OSError) and exc.errno:
        return f"dial tcp {authority}: connect: {os.strerror(exc.errno).lower()}"
    return str(exc) or type(exc).__name__


def _answer_cause(exc: Exception, client: KubeletClient) -> str:
    if isinstance(exc, ssl.SSLError):
        return _tls_cause(exc, client)
    if isinstance(exc, TimeoutError):
        return f"no answer within {ANSWER_TIMEOUT:.0f}s"
    if isinstance(exc, h11.ProtocolError):
        return f"not an HTTP/1.1 answer ({exc})"
    return str(exc) or type(exc).__name__
