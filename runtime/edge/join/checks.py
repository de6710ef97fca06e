"""`kedge join`'s preflight: named checks that change nothing, run in order as a list of steps.

Each check has a name (usable in ``--ignore-preflight-errors``), a verdict (ok, warning, error), a
detail naming the endpoint or file, and a hint naming the fix — so a failed join says which of the ten
things was wrong. A check may use what an earlier one learnt (``Probe``: the token's CA hash, whether a
port answered, the pinned CA, the cloud's Date header). Blocking socket work runs in a thread
(asyncio.to_thread); cryptography is not imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import os
import shutil
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config import load_edge
from runtime.edge.certclient import CertServer, pem_of
from runtime.edge.engine import engine_facts
from runtime.edge.identity import certificate_facts
from runtime.edge.join.options import JoinOptions
from runtime.edge.layout import EdgeFiles
from runtime.errors import KedgeError
from runtime.pki import tokens
from runtime.pki.tls import verify_context

MAX_SKEW = 60.0  # seconds; certificates are backdated 5 minutes, tokens expire by the minute
MIN_FREE = 1 << 30  # 1 GiB for images and the cache
CHECKS = (
    "token",
    "cert-port",
    "hub-port",
    "ca-hash",
    "server-cert",
    "node-name",
    "clock-skew",
    "docker",
    "disk-space",
    "existing-state",
)


@dataclass
class Check:
    name: str
    verdict: str  # ok | warning | error | ignored
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "verdict": self.verdict, "detail": self.detail, "hint": self.hint}


@dataclass
class Probe:
    """What the checks learn in turn, for the checks after them."""

    opts: JoinOptions
    files: EdgeFiles
    ca_hash: str = ""  # from the token
    cert_err: str | None = None  # the certificate server's port did not answer
    hub_err: str | None = None  # the hub's port did not answer
    ca_pem: str | None = None  # the CA, once its hash matched the token's
    date: str = ""  # the certificate server's Date header


def _tcp(host: str, port: int, timeout: float = 3.0) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def peer_sans(host: str, port: int, ca_pem: str) -> list[str]:
    """The SANs of the certificate a TLS server presents (verified against the CA, hostname not)."""
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        verify_context(ca_pem, check_hostname=False).wrap_socket(raw) as tls,
    ):
        cert: dict[str, Any] = dict(tls.getpeercert() or {})
    return [str(pair[1]) for pair in cert.get("subjectAltName", ())]


def hub_protocol(opts: JoinOptions) -> Check:
    """Does the hub port speak CloudHub's protocol? CloudHub (kedge's and KubeEdge's) demands a client
    certificate in the TLS handshake; anything that answers HTTPS without one (the certificate server
    on 10002, a web server) is not it, and a join against it would wait for Ready in vain. With TLS 1.2
    the refusal comes in the handshake; with TLS 1.3 after it, as an alert or a closed connection."""
    name, where = "hub-port", f"cloud hub {opts.hub_addr}"
    hint = (
        f"--server names CloudHub's port (10000); the certificate server's ({opts.cert_port}) is --cert-port"
    )
    asks = Check(name, "ok", f"{where}: TLS, asks for the node certificate (CloudHub)")
    try:
        raw = socket.create_connection((opts.host, opts.hub_port), timeout=5)
    except OSError as exc:
        return Check(name, "warning", f"{where}: protocol not checked ({exc.strerror or exc})")
    with raw:
        try:
            tls = verify_context(None).wrap_socket(raw, server_hostname=opts.host)
        except ssl.SSLError as exc:
            if any(
                a in str(exc).upper()
                for a in ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE")
            ):
                return asks
            return Check(
                name, "error", f"{where}: not a TLS server as CloudHub is ({exc.reason or exc})", hint
            )
        except OSError as exc:
            return Check(name, "warning", f"{where}: protocol not checked ({exc.strerror or exc})")
        with tls:
            try:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {opts.host}\r\nConnection: close\r\n\r\n".encode())
                head = tls.recv(64)
            except (
                OSError
            ):  # ssl errors too: the alert or the reset that refuses a request without certificate
                return asks
    if head.startswith(b"HTTP/"):
        status = head.split(b" ", 2)[1].decode(errors="replace") if head.count(b" ") >= 1 else "?"
        return Check(
            name,
            "error",
            f"{where} answers HTTPS without asking for a node certificate (HTTP {status}): not CloudHub "
            f"(the certificate server?)",
            hint,
        )
    return asks if not head else Check(name, "error", f"{where}: answers {head[:20]!r}, not CloudHub", hint)


# ---------------------------------------------------------------- the checks, in order


def check_token(p: Probe) -> list[Check]:
    try:
        ca_hash, jwt = tokens.split_token(p.opts.token)
        exp = tokens.unverified_claims(jwt).get("exp")
    except tokens.TokenError as exc:
        return [Check("token", "error", str(exc), exc.hint or "")]
    p.ca_hash = ca_hash
    if not isinstance(exp, int | float):
        return [Check("token", "error", "token has no exp claim", "create a new token")]
    if exp <= time.time():
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        hint = "create a new one with `kedge token create` (or `keadm gettoken`)"
        return [Check("token", "error", f"token expired at {when}", hint)]
    return [Check("token", "ok", f"valid for {int((exp - time.time()) / 60)} more minutes")]


def check_cert_port(p: Probe) -> list[Check]:
    o = p.opts
    p.cert_err = _tcp(o.host, o.cert_port)
    hint = "check --server and --cert-port, and that `kedge cloud run` is up" if p.cert_err else ""
    detail = f"certificate server {o.cert_addr}: {p.cert_err or 'reachable'}"
    return [Check("cert-port", "error" if p.cert_err else "ok", detail, hint)]


def check_hub_port(p: Probe) -> list[Check]:
    o = p.opts
    p.hub_err = _tcp(o.host, o.hub_port)
    if not p.hub_err:
        return [hub_protocol(o)]
    hint = "check the port in --server (CloudHub listens on 10000)"
    return [Check("hub-port", "error", f"cloud hub {o.hub_addr}: {p.hub_err}", hint)]


def check_ca_hash(p: Probe) -> list[Check]:
    """The CA the certificate server hands out, pinned by the token's hash."""
    o = p.opts
    if p.cert_err:
        return []
    try:
        der = CertServer(o.host, o.cert_port).fetch_ca()
    except (OSError, KedgeError) as exc:
        detail = f"fetching https://{o.cert_addr}/ca.crt: {exc}"
        return [Check("ca-hash", "error", detail, "is this a kedge/KubeEdge certificate server?")]
    got = hashlib.sha256(der).hexdigest()
    if p.ca_hash and got != p.ca_hash:
        detail = f"CA of {o.cert_addr} has sha256 {got[:16]}…, the token expects {p.ca_hash[:16]}…"
        hint = "wrong cloud, or a man in the middle: check --server and the token"
        return [Check("ca-hash", "error", detail, hint)]
    p.ca_pem = pem_of(der)
    detail = f"CA sha256 {got[:16]}… matches the token" if p.ca_hash else "token malformed"
    return [Check("ca-hash", "ok" if p.ca_hash else "error", detail)]


def check_server_cert(p: Probe) -> list[Check]:
    """The hub's certificate is valid for the address dialled."""
    o = p.opts
    if p.ca_pem is None or p.hub_err:
        return []
    try:
        with (
            socket.create_connection((o.host, o.hub_port), timeout=5) as raw,
            verify_context(p.ca_pem).wrap_socket(raw, server_hostname=o.host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        sans = []
        with contextlib.suppress(OSError):
            sans = peer_sans(o.host, o.hub_port, p.ca_pem)
        detail = (
            f"{o.hub_addr}: certificate not valid for {o.host!r} ({exc.verify_message}); "
            f"it holds SANs: {', '.join(sans) or 'none'}"
        )
        hint = "dial one of those names, or add it with `kedge init --advertise-address`"
        return [Check("server-cert", "error", detail, hint)]
    except OSError as exc:  # ssl errors too
        return [Check("server-cert", "error", f"TLS to {o.hub_addr}: {exc}")]
    return [Check("server-cert", "ok", f"{o.hub_addr} presents a certificate for {o.host}")]


def check_node_name(p: Probe) -> list[Check]:
    """The name is free, or held by this machine's key; the answer's Date header is kept for the skew."""
    if p.ca_pem is None:
        return []
    name = p.opts.node_name
    try:
        status, p.date = CertServer(p.opts.host, p.opts.cert_port, ca_pem=p.ca_pem).node(name)
    except OSError as exc:
        return [Check("node-name", "warning", f"GET /node/{name}: {exc}")]
    if status == 404:
        return [Check("node-name", "ok", f"node name {name!r} is free")]
    if status == 200:
        held = certificate_facts(p.files)
        if held is not None and held.node == name:
            return [Check("node-name", "ok", f"node {name!r} exists and this machine holds its key")]
        hint = "pick another --node-name, or `kedge token create --node <name>` to re-join it"
        return [Check("node-name", "error", f"node name {name!r} is taken in the cluster", hint)]
    return [Check("node-name", "warning", f"GET /node/{name} answered {status}")]


def check_clock_skew(p: Probe) -> list[Check]:
    if not p.date:
        return []
    try:
        skew = time.time() - email.utils.parsedate_to_datetime(p.date).timestamp()
    except (TypeError, ValueError):
        return []
    bad = abs(skew) > MAX_SKEW
    detail = f"clock differs from the cloud by {skew:+.0f}s"
    return [
        Check("clock-skew", "error" if bad else "ok", detail, "synchronise the clock (NTP)" if bad else "")
    ]


def check_disk_space(p: Probe) -> list[Check]:
    state = p.files.paths.state
    probe = next((d for d in (state, *state.parents) if d.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    ok = free >= MIN_FREE
    detail = f"{free >> 20} MiB free under {probe}"
    return [Check("disk-space", "ok" if ok else "warning", detail, "" if ok else "free some space")]


def check_existing_state(p: Probe) -> list[Check]:
    opts, files = p.opts, p.files
    if not files.paths.config_file.exists():
        return [Check("existing-state", "ok", "no previous edge state")]
    try:
        cfg = load_edge(files.paths.config_file, opts.root)
    except KedgeError as exc:
        return [Check("existing-state", "error", str(exc), "fix or remove it (`kedge reset edge`)")]
    if cfg.node.name in ("", opts.node_name) and cfg.hub.server in ("", opts.hub_addr):
        detail = f"already joined as {opts.node_name} to {opts.hub_addr}: converging"
        return [Check("existing-state", "ok", detail)]
    return [
        Check(
            "existing-state",
            "error",
            f"{files.paths.config_file} joins node {cfg.node.name!r} to {cfg.hub.server!r}",
            "run `kedge reset edge` first to join elsewhere or under another name",
        )
    ]


SYNC_CHECKS: tuple[Callable[[Probe], list[Check]], ...] = (
    check_token,
    check_cert_port,
    check_hub_port,
    check_ca_hash,
    check_server_cert,
    check_node_name,
    check_clock_skew,
    check_disk_space,
    check_existing_state,
)


def _sync_preflight(opts: JoinOptions) -> list[Check]:
    probe = Probe(opts, EdgeFiles.of(opts.root))
    return [check for step in SYNC_CHECKS for check in step(probe)]


async def check_docker(opts: JoinOptions) -> list[Check]:
    try:
        facts = await engine_facts(opts.docker_host or os.environ.get("DOCKER_HOST", ""), timeout=5.0)
    except KedgeError as exc:
        return [Check("docker", "error", str(exc), exc.hint or "install and start Docker")]
    out = [Check("docker", "ok", f"Docker engine {facts['version']} (API {facts['apiVersion']})")]
    if not facts["liveRestore"]:
        out.append(
            Check(
                "docker",
                "warning",
                "Docker live-restore is off: restarting or upgrading dockerd stops every pod here",
                'set "live-restore": true in /etc/docker/daemon.json, then `systemctl reload docker` '
                "(a reload: running containers stay up)",
            )
        )
    return out


async def preflight(opts: JoinOptions) -> list[Check]:
    """All named checks; a check listed in ``opts.ignore`` (or "all") is reported as ignored."""
    checks = await asyncio.to_thread(_sync_preflight, opts)
    checks[-2:-2] = await check_docker(opts)  # before disk-space and existing-state
    for c in checks:
        if c.verdict == "error" and (c.name in opts.ignore or "all" in opts.ignore):
            c.verdict = "ignored"
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.verdict == "error"]
