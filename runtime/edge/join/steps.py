"""`kedge join`, the steps that change the machine — each idempotent, so a re-run converges.

    fetch and pin the CA → ECDSA key (0600, reused) + CSR → certificate (reused while valid for this
    node, CA and key) → edge config (user settings kept) → start the runtime → wait for Ready

Each failure is a KedgeError naming the step, the endpoint and the fix. ``cryptography`` is imported
here only, lazily, for the key and CSR (the edge runtime itself never loads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.config import EdgeConfig, apply_overrides, load_edge, save
from runtime.edge.certclient import CertServer, pem_of
from runtime.edge.identity import save_certificate
from runtime.edge.join.options import JoinOptions
from runtime.edge.layout import EdgeFiles
from runtime.edge.renew import RENEW_BEFORE
from runtime.edge.statusd import read_status
from runtime.errors import KedgeError, Unreachable
from runtime.fsutil import live_pid, missing, remove_created, write_atomic
from runtime.pki import tokens
from runtime.procs import kedge_argv, spawn_detached

UNIT = """[Unit]
Description=kedge edge runtime
After=network-online.target docker.service
Wants=network-online.target

[Service]
Environment=MALLOC_ARENA_MAX=2
ExecStart={exe} edge run --root {root}
Restart=always
RestartSec=5
LimitNOFILE=1048576
KillMode=process

[Install]
WantedBy=multi-user.target
"""


@dataclass
class Step:
    title: str
    run: Callable[[], Awaitable[str | None]]  # returns a one-line note (or None)


def systemd_is_pid1() -> bool:
    return Path("/run/systemd/system").is_dir()


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Joiner:
    """Holds what the steps share (the pinned CA, the key) between them."""

    def __init__(self, opts: JoinOptions) -> None:
        self.opts = opts
        self.files = EdgeFiles.of(opts.root)
        self.ca_pem = ""
        self.started = time.monotonic()
        self.proc: subprocess.Popen[bytes] | None = None
        # nothing of an edge here before this join: a failed join removes all it made (undo)
        self.fresh = not self.files.paths.installed()
        p = self.files.paths
        self.created = missing(p.config_file, p.pki, p.state, p.log_file, p.pid_file) if self.fresh else []

    def undo(self) -> list[dict[str, str]]:
        """After a failed first join: stop the runtime it started, remove every file it wrote (the
        rows of `kedge reset edge`), so the next `kedge join` starts clean. A re-join that failed
        keeps the previous installation."""
        if not self.fresh:
            return []
        from runtime.edge.reset import reset_edge

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)
        rows = reset_edge(self.opts.root)
        remove_created(self.created, only_empty=True)  # the directories the join made, once empty
        return [r for r in rows if r["result"] in ("removed", "stopped", "deleted", "failed")]

    def steps(self) -> list[Step]:
        return [
            Step(
                f"fetching the cloud CA from {self.opts.cert_addr} and checking it against the token",
                self.pin_ca,
            ),
            Step("ECDSA P-256 key and certificate signing request", self.ensure_key),
            Step(f"requesting the node certificate for {self.opts.node_name}", self.ensure_cert),
            Step(f"writing {self.files.paths.config_file}", self.write_config),
            Step("starting the edge runtime", self.start_runtime),
            Step(f"waiting for node {self.opts.node_name} to be Ready in the cloud", self.wait_ready),
        ]

    # ------------------------------------------------------------ steps

    async def pin_ca(self) -> str:
        try:
            der = await asyncio.to_thread(CertServer(self.opts.host, self.opts.cert_port).fetch_ca)
        except OSError as exc:
            raise Unreachable(
                f"fetch CA: https://{self.opts.cert_addr}/ca.crt: {exc}",
                hint="check --server/--cert-port and that the cloud is running",
            ) from exc
        tokens.check_ca(self.opts.token, der)  # TokenError (auth, exit 5) on mismatch
        self.ca_pem = pem_of(der)
        self.files.key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the node key's folder
        self.files.make_private()  # and its parents, made 0755 by mkdir or pre-created
        write_atomic(self.files.ca, self.ca_pem, mode=0o644)
        return str(self.files.ca)

    def _key(self) -> Any:
        from runtime.pki import certs  # cryptography, lazily

        if self.files.key.exists():
            return certs.load_key(self.files.key.read_bytes())
        key = certs.new_key()
        write_atomic(self.files.key, certs.key_pem(key), mode=0o600)
        return key

    async def ensure_key(self) -> str:
        existed = self.files.key.exists()
        await asyncio.to_thread(self._key)
        return f"{'reused' if existed else 'created'} {self.files.key}"

    def _cert_still_good(self, key: Any) -> bool:
        from runtime.pki import certs

        if not self.files.cert.exists():
            return False
        try:
            cert = certs.load_cert(self.files.cert.read_bytes())
            ca = certs.load_cert(self.files.ca.read_bytes())
        except (OSError, ValueError, KedgeError):
            return False
        same_key = certs.key_hash(cert) == certs.key_hash(key.public_key())
        return bool(
            same_key
            and cert.issuer == ca.subject
            and certs.node_of(cert) == self.opts.node_name
            and certs.remaining(cert).total_seconds() > RENEW_BEFORE
        )

    def _request_cert(self) -> str:
        from runtime.pki import certs

        key = self._key()
        if self._cert_still_good(key):
            return f"reused {self.files.cert}"
        jwt = tokens.split_token(self.opts.token)[1]
        csr = certs.make_csr(key, self.opts.node_name)
        server = CertServer(self.opts.host, self.opts.cert_port, ca_pem=self.ca_pem or None)
        try:
            pem = server.request_certificate(self.opts.node_name, csr, jwt=jwt)
        except OSError as exc:
            raise Unreachable(
                f"request certificate: {server.url}/edge.crt: {exc}", hint="is the cloud running?"
            ) from exc
        facts = save_certificate(self.files, certs.load_cert(pem))
        return f"valid until {time.strftime('%Y-%m-%d', time.gmtime(facts.not_after))}"

    async def ensure_cert(self) -> str:
        if not self.ca_pem and self.files.ca.exists():
            self.ca_pem = self.files.ca.read_text()
        return await asyncio.to_thread(self._request_cert)

    def build_config(self) -> EdgeConfig:
        """The existing edge.toml (user settings kept) with what this join decides."""
        o = self.opts
        cfg = load_edge(self.files.paths.config_file, o.root)
        cfg.node.name = o.node_name
        cfg.node.labels.update(o.labels)
        cfg.node.with_edge_taint = cfg.node.with_edge_taint or o.with_edge_taint
        cfg.hub.server = o.hub_addr
        cfg.hub.cert_port = o.cert_port
        mode, _, url = o.mqtt.partition("=")
        cfg.mqtt.mode = mode  # type: ignore[assignment]
        cfg.mqtt.url = url if mode == "external" else cfg.mqtt.url
        apply_overrides(cfg, o.sets)
        return cfg

    async def write_config(self) -> str:
        cfg = self.build_config()
        save(cfg, self.files.paths.config_file)
        facts = {
            "server": self.opts.hub_addr,
            "node": self.opts.node_name,
            "certServer": self.opts.cert_addr,
            "joined": time.time(),
        }
        write_atomic(self.files.joined, json.dumps(facts))
        return str(self.files.paths.config_file)

    def _running_pid(self) -> int | None:
        return live_pid(self.files.paths.pid_file)

    async def start_runtime(self) -> str:
        if self.opts.foreground:
            return "in this process (--foreground)"
        paths = self.files.paths
        if systemd_is_pid1() and shutil.which("systemctl"):
            unit = Path("/etc/systemd/system/kedge-edge.service")
            exe = " ".join(kedge_argv())
            write_atomic(unit, UNIT.format(exe=exe, root=self.opts.root), mode=0o644)
            name = "kedge-edge.service"
            for cmd in (["daemon-reload"], ["enable", name], ["restart", name]):
                await asyncio.to_thread(subprocess.run, ["systemctl", *cmd], check=True, timeout=60)
            return f"systemd unit {unit}"
        old = self._running_pid()
        if old is not None:  # converge: restart so the new config and certificate are used
            os.kill(old, signal.SIGTERM)
            for _ in range(100):
                if self._running_pid() is None:
                    break
                await asyncio.sleep(0.1)
        args = ["edge", "run", "--root", str(self.opts.root)]
        self.proc = spawn_detached(args, paths.log_file, {"MALLOC_ARENA_MAX": "2"})
        for _ in range(400):
            pid = self._running_pid()
            if pid is not None and (pid == self.proc.pid or _parent(pid) == self.proc.pid):
                return f"pid {pid}, log {paths.log_file}"  # a one-file build: the bootloader's child
            if self.proc.poll() is not None:
                raise KedgeError(
                    f"start runtime: `kedge edge run` exited with {self.proc.returncode}",
                    hint=f"see {paths.log_file}",
                )
            await asyncio.sleep(0.05)
        return f"pid {self.proc.pid} (no pid file yet), log {paths.log_file}"

    async def wait_ready(self) -> str:
        sock = Path(self.build_config().status.socket)
        deadline = time.monotonic() + self.opts.ready_timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = await asyncio.to_thread(read_status, sock, 2.0)
            if last and (last.get("node") or {}).get("ready"):
                return f"Ready after {time.monotonic() - self.started:.1f}s"
            if self.proc is not None and self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        cloud = (last or {}).get("cloud") or {}
        node = (last or {}).get("node") or {}
        why = cloud.get("auth_error") or cloud.get("last_error") or node.get("lastError")
        raise Unreachable(
            f"wait for Ready: node {self.opts.node_name} not Ready via {self.opts.hub_addr} after "
            f"{self.opts.ready_timeout:g}s" + (f" ({why})" if why else ""),
            hint=f"see {self.files.paths.log_file} and `kedge status`",
        )
