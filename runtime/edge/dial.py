"""How the edge dials the cloud: the TLS identity, the websocket upgrade, and what a failed dial means.

Kept apart from EdgeHub's session logic (queueing, acks, requests) because it is the part that has to
match edgecore's handshake and the part the retry policy is judged on; ``classify`` sorts an error into
retry / auth / fatal, and EdgeHub takes it (or a test's policy) as ``policy``.

The node's Certificate message must hold its own certificate only: cloudcore with node authorization
refuses a client chain with more than one certificate ("intermediate certificates are not supported")
and then leaves the socket open. OpenSSL fills the client chain from the verify store of the same
SSL_CTX, and Python's ssl module exposes neither SSL_MODE_NO_AUTO_CHAIN nor a separate chain store,
so ``ClientTLS`` keeps two contexts: ``link`` (the node's certificate, no CA: what the session's
handshake sends) and ``verify`` (the CA, hostname checking: OpenSSL verifies the cloud with it in a
short probe handshake). The session goes on only when its peer shows a certificate a probe verified
(kept by SHA-256 for the process, so a reconnect costs no second handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import Iterator
from enum import Enum
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI
from websockets.uri import parse_uri

from runtime import __version__

HDR_VERSION = "X-Kedge-Version"
HDR_EPOCH = "X-Kedge-Cache-Epoch"


class Failure(Enum):
    RETRY = "retry"
    AUTH = "auth"
    FATAL = "fatal"


_AUTH_SSL_REASONS = (
    "CERTIFICATE_REQUIRED",
    "CERTIFICATE_EXPIRED",
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_VERIFY_FAILED",
    "ACCESS_DENIED",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def classify(exc: BaseException) -> Failure:
    """Retry policy: TLS refusals either way and HTTP 401/403 are AUTH, a bad URL is FATAL, the rest
    (refused, reset, timeouts, 5xx) is RETRY.

    With TLS 1.3 the server checks the client certificate after the client finished its handshake, so
    a refused certificate reaches us only as the connection closing before any HTTP response (the
    alert is swallowed by the ssl layer). A kedge cloud answers every other refusal with an HTTP
    status, so that shape counts as AUTH too."""
    if isinstance(exc, InvalidMessage) and any(
        isinstance(e, EOFError) and "HTTP status line" in str(e) for e in _chain(exc)
    ):
        return Failure.AUTH
    for e in _chain(exc):
        if isinstance(e, InvalidURI):
            return Failure.FATAL
        if isinstance(e, InvalidStatus) and e.response.status_code in (401, 403):
            return Failure.AUTH
        if isinstance(e, ssl.SSLCertVerificationError):
            return Failure.AUTH
        if isinstance(e, ssl.SSLError) and any(r in f"{e.reason} {e}" for r in _AUTH_SSL_REASONS):
            return Failure.AUTH
    return Failure.RETRY


def client_ssl_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """The node's identity and the pinned kedge CA; TLS 1.2+ (its handshake also sends the CA)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class PeerChanged(ConnectionError):
    """The session's peer showed another certificate than the probe verified (retried: a cloud
    behind a load balancer may serve several; each verified one is remembered)."""


class ClientTLS:
    """The node's TLS: ``link`` sends the leaf alone, ``verify_context()`` checks the cloud (see the
    module doc). The verifying context is built for each probe (rare: once per cloud certificate per
    process), so it always holds the current files and costs nothing between probes."""

    def __init__(self, cert: str, key: str, ca: str) -> None:
        self.cert, self.key, self.ca = cert, key, ca
        self.link = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.link.minimum_version = ssl.TLSVersion.TLSv1_2
        self.link.check_hostname = False
        self.link.verify_mode = ssl.CERT_NONE  # verified through `verify` before any byte of HTTP
        self.link.load_cert_chain(cert, key)
        self.trusted: set[bytes] = set()

    def verify_context(self) -> ssl.SSLContext:
        """The CA and host-name checking, with the node's certificate (its chain then holds the CA)."""
        return client_ssl_context(self.cert, self.key, self.ca)

    def reload(self) -> None:
        """Load a renewed certificate: later handshakes use it, open connections keep theirs."""
        self.link.load_cert_chain(self.cert, self.key)

    async def check(self, peer_der: bytes | None, host: str, port: int, timeout: float) -> None:  # noqa: ASYNC109
        """Return when ``peer_der`` is a certificate OpenSSL verified for ``host`` against the CA;
        ``ssl.SSLCertVerificationError`` (auth) when the probe refuses the cloud, PeerChanged else."""
        if peer_der is None:
            raise PeerChanged(f"cloud {host}:{port} showed no certificate")
        if hashlib.sha256(peer_der).digest() in self.trusted:
            return
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self.verify_context(), server_hostname=host), timeout
        )
        try:
            verified = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        self.trusted.add(hashlib.sha256(verified).digest())
        if verified != peer_der:
            raise PeerChanged(f"cloud {host}:{port} showed another certificate than the one verified")


def _checked_connection(tls: ClientTLS, host: str, port: int, timeout: float) -> type[ClientConnection]:
    """A ClientConnection that checks the peer's certificate after TLS, before the HTTP upgrade."""

    class Checked(ClientConnection):
        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            sslobj = self.transport.get_extra_info("ssl_object")
            await tls.check(sslobj.getpeercert(binary_form=True) if sslobj else None, host, port, timeout)
            await super().handshake(*args, **kwargs)

    return Checked


def dial(
    url: str,
    ssl_context: ssl.SSLContext | ClientTLS,
    headers: dict[str, str],
    *,
    max_frame_bytes: int,
    heartbeat: float,
    dead_after: float,
    connect_timeout: float,
) -> connect:
    """The upgrade as edgecore makes it (no compression, no proxy), with a websocket ping every two
    heartbeats: the cloud never answers keepalives, so its pong is how a cut link shows.
    With a ``ClientTLS`` the session sends the node's certificate alone and checks the cloud's."""
    extra: dict[str, Any] = {}
    if isinstance(ssl_context, ClientTLS):
        uri = parse_uri(url)
        extra["create_connection"] = _checked_connection(ssl_context, uri.host, uri.port, connect_timeout)
        ssl_context = ssl_context.link
    return connect(
        url,
        ssl=ssl_context,
        additional_headers=headers,
        max_size=max_frame_bytes,
        compression=None,
        ping_interval=2 * heartbeat,
        ping_timeout=dead_after,
        open_timeout=connect_timeout,
        close_timeout=min(5.0, dead_after),
        proxy=None,
        user_agent_header=f"kedge/{__version__}",
        max_queue=4,
        **extra,
    )
