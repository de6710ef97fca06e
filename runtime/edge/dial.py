"""How the edge dials the cloud: the TLS identity, the websocket upgrade, and what a failed dial means.

Kept apart from EdgeHub's session logic (queueing, acks, requests) because it is the part that has to
match edgecore's handshake and the part the retry policy is judged on; ``classify`` sorts an error into
retry / auth / fatal, and EdgeHub takes it (or a test's policy) as ``policy``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from enum import Enum

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus, InvalidURI

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
    """The node's identity and the pinned kedge CA; TLS 1.2+."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def dial(
    url: str,
    ssl_context: ssl.SSLContext,
    headers: dict[str, str],
    *,
    max_frame_bytes: int,
    heartbeat: float,
    dead_after: float,
    connect_timeout: float,
) -> connect:
    """The upgrade as edgecore makes it (no compression, no proxy), with a websocket ping every two
    heartbeats: the cloud never answers keepalives, so its pong is how a cut link shows."""
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
    )
