"""Upgrade-time rules of the CloudHub: who the peer is (certificate CN), what URL and headers it
may use, the close codes, and the process limits a hub needs. Kept apart from the server loop so the
rules read in one place."""

from __future__ import annotations

import contextlib
import logging
import resource as _rlimit
import sys
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from runtime.cloud.hub.session import SessionInfo
from runtime.protocol.tunnel import parse_stream_path

NODE_CN_PREFIX = "system:node:"
HDR_NODE_ID = "node_id"
HDR_PROJECT_ID = "project_id"
HDR_VERSION = "X-Kedge-Version"  # kedge extras; KubeEdge peers neither send nor read them
HDR_EPOCH = "X-Kedge-Cache-Epoch"
CLOSE_REPLACED = 4000  # private-use close codes (RFC 6455 §7.4.2)
CLOSE_SILENT = 4001
CLOSE_STUCK = 4002


class QuietProbes(logging.LoggerAdapter):
    """The hub's logger for websockets: a connection that closes after TLS and before any HTTP (an
    edge verifying the cloud's certificate, runtime/edge/dial.py; a load balancer's health check) is
    logged at debug, not as "opening handshake failed" with a traceback per edge start."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if msg == "opening handshake failed" and _closed_before_request(sys.exc_info()[1]):
            level = logging.DEBUG
        super().log(level, msg, *args, **kwargs)


def _closed_before_request(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, EOFError) and "stream ends after 0 bytes" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def raise_nofile_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (one fd per edge); returns the new soft limit."""
    soft, hard = _rlimit.getrlimit(_rlimit.RLIMIT_NOFILE)
    if hard == _rlimit.RLIM_INFINITY or soft < hard:
        target = 1_048_576 if hard == _rlimit.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            _rlimit.setrlimit(_rlimit.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def node_from_cert(ws: ServerConnection) -> str | None:
    """The node named by the verified client certificate's CN, or None."""
    sslobj = ws.transport.get_extra_info("ssl_object")
    cert: Any = sslobj.getpeercert() if sslobj is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and isinstance(value, str) and value.startswith(NODE_CN_PREFIX):
                return value[len(NODE_CN_PREFIX) :] or None
    return None


def peer_key_hash(ws: ServerConnection) -> str:
    """Hash of the verified client certificate's public key ("" if unavailable), recorded on the Node
    so that a join token alone cannot take the name over later (design.md §4)."""
    from runtime.pki.certs import key_hash, load_cert

    sslobj = ws.transport.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    return key_hash(load_cert(der)) if der else ""


def parse_path(path: str) -> tuple[str, str] | None:
    """``/<projectID>/<node>/events`` → (project, node)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if len(parts) == 3 and parts[2] == "events" and parts[0] and parts[1]:
        return parts[0], parts[1]
    return None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an upgrade is refused: HTTP status, metric label, text for the peer and the log."""

    status: HTTPStatus
    reason: str
    text: str


def vet_upgrade(ws: ServerConnection, request: Request) -> tuple[str, str] | Refusal:
    """(node, project) of an acceptable upgrade: the certificate names a node, the path has the
    ``/<projectID>/<node>/events`` form, and neither path nor ``node_id`` header names another node."""
    cert_node = node_from_cert(ws)
    if cert_node is None:
        return Refusal(
            HTTPStatus.FORBIDDEN, "certificate", f"client certificate CN must be {NODE_CN_PREFIX}<node>"
        )
    parsed = parse_path(request.path)
    if parsed is None:
        return Refusal(
            HTTPStatus.NOT_FOUND, "path", f"path {request.path!r} is not /<projectID>/<node>/events"
        )
    project, path_node = parsed
    header_node = request.headers.get(HDR_NODE_ID, "")
    for claimed, where in ((path_node, "path"), (header_node, "node_id header")):
        if claimed and claimed != cert_node:
            text = f"{where} names node {claimed!r} but the certificate is {cert_node!r}"
            return Refusal(HTTPStatus.FORBIDDEN, "node_mismatch", text)
    return cert_node, request.headers.get(HDR_PROJECT_ID, "") or project


def vet_stream(ws: ServerConnection, request: Request) -> tuple[str, str] | Refusal | None:
    """(node, session id) of a stream tunnel's upgrade (runtime/protocol/tunnel.py), None for another
    path: the certificate names a node and the path names the same one."""
    parsed = parse_stream_path(request.path)
    if parsed is None:
        return None
    cert_node = node_from_cert(ws)
    if cert_node is None:
        return Refusal(
            HTTPStatus.FORBIDDEN, "certificate", f"client certificate CN must be {NODE_CN_PREFIX}<node>"
        )
    _, path_node, sid = parsed
    if path_node != cert_node:
        text = f"path names node {path_node!r} but the certificate is {cert_node!r}"
        return Refusal(HTTPStatus.FORBIDDEN, "node_mismatch", text)
    return cert_node, sid


def session_info(ws: ServerConnection, node: str, project: str) -> SessionInfo:
    """What `kedge status` and the controllers know of a new session (kedge peers send a version).
    Then drops the upgrade response and empties the request's headers, which websockets would
    otherwise keep for the connection's life (~5 KB per edge) though nothing reads them again (the
    request itself stays: websockets takes a missing one for a handshake still to come)."""
    version = ws.request.headers.get(HDR_VERSION, "") if ws.request else ""
    remote = ws.remote_address
    info = SessionInfo(
        node=node,
        project_id=project,
        peer_kind="kedge" if version else "kubeedge",
        version=version,
        epoch=ws.request.headers.get(HDR_EPOCH, "") if ws.request else "",
        remote=f"{remote[0]}:{remote[1]}" if remote else "",
        since=time.time(),
        last_contact=time.time(),
        key_hash=peer_key_hash(ws),
    )
    if ws.request is not None:
        ws.request.headers.clear()
    ws.response = None
    return info
