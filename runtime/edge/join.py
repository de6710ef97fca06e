"""`kedge join`, runtime side: options, named preflight checks, and the bootstrap HTTPS client.

Preflight changes nothing. Each check has a name (usable in ``--ignore-preflight-errors``), a verdict
(ok, warning, error), a detail naming the endpoint or file, and a hint naming the fix — so a failed
join says which of the ten things was wrong. The steps that change the machine live in join_steps.
Blocking socket work runs in threads (asyncio.to_thread); cryptography is never imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import http.client
import os
import shutil
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.config import load_edge
from runtime.edge.engine import engine_facts
from runtime.edge.layout import EdgeFiles
from runtime.errors import KedgeError, UsageError
from runtime.pki import tokens

HUB_PORT = 10000
CERT_PORT = 10002
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
class JoinOptions:
    token: str
    server: str  # host[:port] of CloudHub
    root: Path = Path("/")
    cert_port: int = CERT_PORT
    node_name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    with_edge_taint: bool = False
    mqtt: str = "embedded"  # embedded | external=URL | off
    sets: list[str] = field(default_factory=list)
    foreground: bool = False
    ignore: set[str] = field(default_factory=set)  # check names, or "all"
    docker_host: str = ""
    ready_timeout: float = 60.0

    def __post_init__(self) -> None:
        self.server = _strip_scheme(self.server)
        host, _, port = self.server.rpartition(":") if self.server.count(":") == 1 else ("", "", "")
        if not host:
            host, port = self.server.strip("[]"), str(HUB_PORT)
        if not port.isdigit():
            raise UsageError(f"--server {self.server!r}: expected HOST[:PORT]")
        self.host, self.hub_port = host, int(port)
        self.node_name = (self.node_name or socket.gethostname()).lower()
        if self.mqtt not in ("embedded", "off") and not self.mqtt.startswith("external="):
            raise UsageError(f"--mqtt {self.mqtt!r}: expected embedded, external=URL or off")

    @property
    def hub_addr(self) -> str:
        return f"{self.host}:{self.hub_port}"

    @property
    def cert_addr(self) -> str:
        return f"{self.host}:{self.cert_port}"


def _strip_scheme(server: str) -> str:
    """`https://h:p` and `wss://h:p[/]` mean h:p (the hub speaks TLS only); `http://`, `ws://` or any
    other scheme is a usage error."""
    scheme, sep, rest = server.partition("://")
    if not sep:
        return server
    if scheme.lower() not in ("https", "wss"):
        raise UsageError(
            f"--server {server!r}: the cloud hub speaks TLS only, {scheme}:// cannot reach it",
            hint="give HOST[:PORT] (CloudHub's port, 10000), e.g. --server 203.0.113.10:10000",
        )
    return rest.rstrip("/")


@dataclass
class Check:
    name: str
    verdict: str  # ok | warning | error | ignored
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "verdict": self.verdict, "detail": self.detail, "hint": self.hint}


# ---------------------------------------------------------------- bootstrap client (:10002)


def _ctx(ca_pem: str | None, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.load_verify_locations(cadata=ca_pem)
        ctx.check_hostname = check_hostname
    return ctx


def https(
    host: str,
    port: int,
    method: str,
    path: str,
    *,
    ca_pem: str | None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes, dict[str, str]]:
    """One HTTPS request to the bootstrap server: (status, body, headers). Raises OSError/ssl errors."""
    conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=_ctx(ca_pem))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def fetch_ca(host: str, port: int) -> bytes:
    """GET /ca.crt without trusting anyone yet (the token's hash is checked by the caller)."""
    status, body, _ = https(host, port, "GET", "/ca.crt", ca_pem=None)
    if status != 200:
        text = body[:200].decode(errors="replace")
        raise KedgeError(f"https://{host}:{port}/ca.crt answered {status}: {text}")
    return body


def ca_pem_of(der: bytes) -> str:
    return ssl.DER_cert_to_PEM_cert(der)


def token_claims(token: str) -> tuple[str, dict[str, Any]]:
    """(CA hash, unverified JWT claims); raises tokens.TokenError when malformed."""
    ca_hash, jwt = tokens.split_token(token)
    return ca_hash, tokens.unverified_claims(jwt)


def peer_sans(host: str, port: int, ca_pem: str) -> list[str]:
    """The SANs of the certificate a TLS server presents (verified against the CA, hostname not)."""
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        _ctx(ca_pem, check_hostname=False).wrap_socket(raw) as tls,
    ):
        cert: dict[str, Any] = dict(tls.getpeercert() or {})
    return [str(pair[1]) for pair in cert.get("subjectAltName", ())]


# ---------------------------------------------------------------- preflight


def _tcp(host: str, port: int, timeout: float = 3.0) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


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
            tls = _ctx(None).wrap_socket(raw, server_hostname=opts.host)
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


def existing_identity(files: EdgeFiles) -> str | None:
    """The node name of a certificate this machine already holds (CN system:node:<n>), stdlib only."""
    try:
        decoded = ssl._ssl._test_decode_cert(str(files.cert))  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError, ValueError):
        return None
    for rdn in decoded.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value.startswith("system:node:"):
                return str(value[len("system:node:") :])
    return None


def _sync_preflight(opts: JoinOptions) -> list[Check]:
    out: list[Check] = []
    files = EdgeFiles.of(opts.root)
    # token
    ca_hash = ""
    try:
        ca_hash, claims = token_claims(opts.token)
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            out.append(Check("token", "error", "token has no exp claim", "create a new token"))
        elif exp <= time.time():
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
            out.append(
                Check(
                    "token",
                    "error",
                    f"token expired at {when}",
                    "create a new one with `kedge token create` (or `keadm gettoken`)",
                )
            )
        else:
            out.append(Check("token", "ok", f"valid for {int((exp - time.time()) / 60)} more minutes"))
    except tokens.TokenError as exc:
        out.append(Check("token", "error", str(exc), exc.hint or ""))
    # endpoints
    cert_err = _tcp(opts.host, opts.cert_port)
    out.append(
        Check(
            "cert-port",
            "error" if cert_err else "ok",
            f"certificate server {opts.cert_addr}: {cert_err or 'reachable'}",
            "check --server and --cert-port, and that `kedge cloud run` is up" if cert_err else "",
        )
    )
    hub_err = _tcp(opts.host, opts.hub_port)
    out.append(
        Check(
            "hub-port",
            "error" if hub_err else "ok",
            f"cloud hub {opts.hub_addr}: {hub_err or 'reachable'}",
            "check the port in --server (CloudHub listens on 10000)" if hub_err else "",
        )
        if hub_err
        else hub_protocol(opts)
    )
    # CA pinned by the token
    ca_pem = None
    date_header = ""
    if not cert_err:
        try:
            der = fetch_ca(opts.host, opts.cert_port)
            got = hashlib.sha256(der).hexdigest()
            if ca_hash and got != ca_hash:
                detail = f"CA of {opts.cert_addr} has sha256 {got[:16]}…, the token expects {ca_hash[:16]}…"
                out.append(
                    Check(
                        "ca-hash",
                        "error",
                        detail,
                        "wrong cloud, or a man in the middle: check --server and the token",
                    )
                )
            else:
                ca_pem = ca_pem_of(der)
                detail = f"CA sha256 {got[:16]}… matches the token" if ca_hash else "token malformed"
                out.append(Check("ca-hash", "ok" if ca_hash else "error", detail))
        except (OSError, ssl.SSLError, KedgeError) as exc:
            out.append(
                Check(
                    "ca-hash",
                    "error",
                    f"fetching https://{opts.cert_addr}/ca.crt: {exc}",
                    "is this a kedge/KubeEdge certificate server?",
                )
            )
    # server certificate valid for the address dialed
    if ca_pem is not None and not hub_err:
        try:
            with (
                socket.create_connection((opts.host, opts.hub_port), timeout=5) as raw,
                _ctx(ca_pem).wrap_socket(raw, server_hostname=opts.host),
            ):
                pass
            out.append(Check("server-cert", "ok", f"{opts.hub_addr} presents a certificate for {opts.host}"))
        except ssl.SSLCertVerificationError as exc:
            sans = []
            with contextlib.suppress(OSError, ssl.SSLError):
                sans = peer_sans(opts.host, opts.hub_port, ca_pem)
            detail = (
                f"{opts.hub_addr}: certificate not valid for {opts.host!r} ({exc.verify_message}); "
                f"it holds SANs: {', '.join(sans) or 'none'}"
            )
            out.append(
                Check(
                    "server-cert",
                    "error",
                    detail,
                    "dial one of those names, or add it with `kedge init --advertise-address`",
                )
            )
        except (OSError, ssl.SSLError) as exc:
            out.append(Check("server-cert", "error", f"TLS to {opts.hub_addr}: {exc}"))
    # node name free, or held by this machine's key; the answer's Date header gives the clock skew
    if ca_pem is not None:
        check, date_header = _node_name(opts, files, ca_pem)
        out.append(check)
    if date_header:
        with contextlib.suppress(TypeError, ValueError):
            skew = time.time() - email.utils.parsedate_to_datetime(date_header).timestamp()
            bad = abs(skew) > MAX_SKEW
            detail = f"clock differs from the cloud by {skew:+.0f}s"
            out.append(
                Check(
                    "clock-skew",
                    "error" if bad else "ok",
                    detail,
                    "synchronise the clock (NTP)" if bad else "",
                )
            )
    # disk
    state = files.paths.state
    probe = next((p for p in (state, *state.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    out.append(
        Check(
            "disk-space",
            "ok" if free >= MIN_FREE else "warning",
            f"{free >> 20} MiB free under {probe}",
            "" if free >= MIN_FREE else "free some space",
        )
    )
    # existing local state
    out.append(_existing_state(opts, files))
    return out


def _node_name(opts: JoinOptions, files: EdgeFiles, ca_pem: str) -> tuple[Check, str]:
    name = opts.node_name
    try:
        status, _, hdrs = https(opts.host, opts.cert_port, "GET", f"/node/{name}", ca_pem=ca_pem)
    except (OSError, ssl.SSLError) as exc:
        return Check("node-name", "warning", f"GET /node/{name}: {exc}"), ""
    date = hdrs.get("date", "")
    if status == 404:
        return Check("node-name", "ok", f"node name {name!r} is free"), date
    if status == 200 and existing_identity(files) == name:
        return Check("node-name", "ok", f"node {name!r} exists and this machine holds its key"), date
    if status == 200:
        return Check(
            "node-name",
            "error",
            f"node name {name!r} is taken in the cluster",
            "pick another --node-name, or `kedge token create --node <name>` to re-join it",
        ), date
    return Check("node-name", "warning", f"GET /node/{name} answered {status}"), date


def _existing_state(opts: JoinOptions, files: EdgeFiles) -> Check:
    if not files.paths.config_file.exists():
        return Check("existing-state", "ok", "no previous edge state")
    try:
        cfg = load_edge(files.paths.config_file, opts.root)
    except KedgeError as exc:
        return Check("existing-state", "error", str(exc), "fix or remove it (`kedge reset edge`)")
    same = cfg.node.name in ("", opts.node_name) and cfg.hub.server in ("", opts.hub_addr)
    if same:
        detail = f"already joined as {opts.node_name} to {opts.hub_addr}: converging"
        return Check("existing-state", "ok", detail)
    return Check(
        "existing-state",
        "error",
        f"{files.paths.config_file} joins node {cfg.node.name!r} to {cfg.hub.server!r}",
        "run `kedge reset edge` first to join elsewhere or under another name",
    )


async def preflight(opts: JoinOptions) -> list[Check]:
    """All named checks; a check listed in ``opts.ignore`` (or "all") is reported as ignored."""
    checks = await asyncio.to_thread(_sync_preflight, opts)
    try:
        facts = await engine_facts(opts.docker_host or os.environ.get("DOCKER_HOST", ""), timeout=5.0)
        detail = f"Docker engine {facts['version']} (API {facts['apiVersion']})"
        checks.insert(-2, Check("docker", "ok", detail))
        if not facts["liveRestore"]:
            checks.insert(
                -2,
                Check(
                    "docker",
                    "warning",
                    "Docker live-restore is off: restarting or upgrading dockerd stops every pod here",
                    'set "live-restore": true in /etc/docker/daemon.json, then `systemctl reload docker` '
                    "(a reload: running containers stay up)",
                ),
            )
    except KedgeError as exc:
        checks.insert(-2, Check("docker", "error", str(exc), exc.hint or "install and start Docker"))
    for c in checks:
        if c.verdict == "error" and (c.name in opts.ignore or "all" in opts.ignore):
            c.verdict = "ignored"
    return checks


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.verdict == "error"]
