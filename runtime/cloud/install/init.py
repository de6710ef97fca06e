"""`kedge init` as phases: the one runtime entry point of the command (keadm's installer, k3s's run).

    manifests(req, progress)  --dry-run: the objects init would apply, at the server's versions
    install(req, progress)    the lock, then the phases in order, each one numbered step:
        [embedded] start the API server   steps.start_apiserver (its port checked first)
        preflight checks                  preflight.py + existing.py → Preflight.enforce
        applying manifests                runtime/kube/apply.py (objects existing.py keeps are left)
        certificate authority             steps.ensure_pki
        starting the cloud                steps.InstallRecord, write_host_config, start_cloud
        waiting for the cloud             steps.wait_deployment | procs.wait_cloud_ready
        join token                        steps.create_token → the `kedge join` line
    → the summary dict the CLI renders (mode, objects, caHash, cloudPid, health, join, kubeconfig).

What happens is said through `progress` (the Progress protocol below): the CLI numbers the steps,
prints the checks and notes on stderr and the applied objects on stdout; the runtime never prints.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runtime.cloud.install import existing, procs, steps
from runtime.cloud.install import preflight as pre
from runtime.cloud.install.manifests import InstallOptions, render
from runtime.cloud.install.versions import ref
from runtime.errors import KedgeError
from runtime.kube.apply import ApplyResult, apply_objects
from runtime.kube.client import KubeClient
from runtime.paths import Paths

HUB_PORT, CERT_PORT, STREAM_PORT, HEALTH = 10000, 10002, 10003, "127.0.0.1:10550"


class Progress(Protocol):
    """How init says what it does; the CLI's implementation renders it (kubeedge_cli/commands/init.py)."""

    def begin(self, total: int) -> None:
        """The number of steps that follow."""

    def step(self, title: str) -> AbstractContextManager[None]:
        """One numbered step, around its work."""

    def note(self, text: str) -> None:
        """A detail line (pid, kubeconfig, CA hash …)."""

    def checks(self, results: Sequence[pre.CheckResult]) -> None:
        """Preflight results (after --ignore-preflight-errors)."""

    def applied(self, lines: Sequence[tuple[str, str]]) -> None:
        """(object, result) per applied manifest: `deployment.apps/kedge-cloud created`."""


@dataclass
class InitRequest:
    mode: steps.InitMode
    options: InstallOptions
    root: Path
    kubeconfig: Path | None = None
    sets: list[str] = field(default_factory=list)  # cloud.toml overrides (host/embedded)
    wait: bool = True
    wait_s: float = 300.0
    token: bool = True
    ttl_s: float = 86400.0
    ignore: list[str] = field(default_factory=list)  # --ignore-preflight-errors
    patch_daemonsets: bool = False
    apiserver_port: int | None = None
    event_ttl_s: float | None = None  # embedded: the API server's --event-ttl (None: its default, 1 h)

    @property
    def local(self) -> bool:
        """The cloud runs as a process on this machine (host and embedded modes)."""
        return self.mode != "cluster"


async def manifests(req: InitRequest, progress: Progress) -> list[dict[str, Any]]:
    """--dry-run: the objects, rendered for the versions the kubeconfig's server serves (the newest
    when there is no reachable server, said through `progress`; embedded: always the newest)."""
    served: set[str] | None = None
    if req.mode != "embedded":
        try:
            client = steps.connect(req.kubeconfig, req.root)
            progress.note(steps.using(client))
            async with client:
                served = await client.served_versions()
        except KedgeError as exc:
            progress.note(f"  no API server to render for ({exc}): rendering the newest API versions")
    return render(req.options, served=served)


def install(req: InitRequest, progress: Progress) -> dict[str, Any]:
    """Install the cloud (one init per root at a time); the summary to render."""
    with procs.exclusive(req.root, "init"):
        return asyncio.run(_install(req, progress))


async def _install(req: InitRequest, progress: Progress) -> dict[str, Any]:
    embedded = req.mode == "embedded"
    progress.begin(6 + (1 if embedded else 0))
    kubeconfig = req.kubeconfig
    if embedded:
        _check_apiserver_port(req, progress)
        with progress.step("starting the embedded API server"):
            kubeconfig = await _start_apiserver(req, progress)
    client = steps.connect(kubeconfig, req.root)
    progress.note(steps.using(client))
    phases = _Phases(req, progress, client, kubeconfig or client.source_info.path)
    async with client:
        if embedded:
            await steps.wait_api(client, 60)
        await phases.run()
    if embedded:
        phases.summary["kubeconfig"] = str(phases.kubeconfig)
    return phases.summary


def _check_apiserver_port(req: InitRequest, progress: Progress) -> None:
    """The embedded API server starts before the other checks can run: check its port first."""
    if req.apiserver_port == 0 or procs.running_pid(req.root, "apiserver") is not None:
        return
    pf = pre.Preflight()
    pre.check_ports(pf, [("127.0.0.1", req.apiserver_port or steps.DEFAULT_APISERVER_PORT)])
    progress.checks(pf.enforce(req.ignore))


async def _start_apiserver(req: InitRequest, progress: Progress) -> Path:
    usage = _override(req.sets, "status.socket") or str(Paths.of(req.root, "cloud").status_socket)
    path, pid, started = await asyncio.to_thread(
        steps.start_apiserver, req.root, req.apiserver_port, event_ttl=req.event_ttl_s, usage_socket=usage
    )
    state = "started" if started else "already running"
    progress.note(f"  apiserver pid {pid} ({state}), kubeconfig {path}")
    return path


class _Phases:
    """The steps after the API server is reachable, sharing the client and the summary."""

    def __init__(
        self, req: InitRequest, progress: Progress, client: KubeClient, kubeconfig: Path | None
    ) -> None:
        self.req, self.progress, self.client, self.kubeconfig = req, progress, client, kubeconfig
        self.namespace = req.options.namespace
        self.summary: dict[str, Any] = {"mode": req.mode}

    async def run(self) -> None:
        req, step = self.req, self.progress.step
        with step("preflight checks"):
            pf, objs = await self.preflight()
        with step("applying manifests"):
            await self.apply(pf, objs)
        with step("certificate authority"):
            await self.pki()
        with step("starting the cloud" if req.local else "cloud deployment applied"):
            await self.start_cloud()
        with step("waiting for the cloud to be ready" if req.wait else "not waiting (--no-wait)"):
            if req.wait:
                await self.wait_ready()
        with step("join token" if req.token else "no join token (--no-token)"):
            if req.token:
                await self.join_token()

    async def preflight(self) -> tuple[pre.Preflight, list[dict[str, Any]]]:
        req, client = self.req, self.client
        pf = pre.Preflight()
        await pre.check_api(pf, client)
        await pre.check_permissions(pf, client)
        pre.check_addresses(pf, req.options.advertise_addresses)
        if req.local and procs.running_pid(req.root, "cloud") is None:
            pre.check_ports(pf, local_ports(req.sets))
        objs = await existing.check_cluster(pf, client, self.namespace, render(req.options))
        await pre.check_daemonsets(pf, client)
        self.progress.checks(pf.enforce(req.ignore))
        if req.patch_daemonsets and pf.daemonsets:
            patched = await pre.patch_daemonsets(client, pf.daemonsets)
            self.progress.note(
                f"  patched {len(patched)} DaemonSet(s) to stay off edge nodes: {', '.join(patched)}"
            )
        return pf, objs

    async def apply(self, pf: pre.Preflight, objs: list[dict[str, Any]]) -> None:
        objs, kept = existing.to_apply(pf, objs)
        results = await apply_objects(self.client, objs)
        lines = [(k, "kept") for k in kept] + [(_ref(r), r.action) for r in results]
        self.summary["objects"] = [{"object": o, "result": a} for o, a in lines]
        self.progress.applied(lines)

    async def pki(self) -> None:
        ca = await steps.ensure_pki(self.client, self.namespace)
        self.summary["caHash"] = "sha256:" + ca.hash
        self.progress.note(f"  CA sha256:{ca.hash}")

    async def start_cloud(self) -> None:
        req, kubeconfig = self.req, self.kubeconfig
        record_kc = str(kubeconfig.resolve()) if kubeconfig else ""
        steps.InstallRecord(req.mode, self.namespace, record_kc).save(req.root)
        if not req.local:
            return
        cfg_path = steps.write_host_config(req.root, req.options, kubeconfig, req.sets)
        pid, started = await asyncio.to_thread(
            steps.start_cloud, req.root, kubeconfig, systemd=req.mode == "host"
        )
        self.summary["cloudPid"] = pid
        state = "started" if started else "already running"
        self.progress.note(f"  kedge cloud run pid {pid} ({state}), config {cfg_path}")

    async def wait_ready(self) -> None:
        req = self.req
        if not req.local:
            await steps.wait_deployment(self.client, self.namespace, req.wait_s)
            return
        pid = self.summary["cloudPid"]
        self.summary["health"] = await asyncio.to_thread(procs.wait_cloud_ready, req.root, pid, req.wait_s)

    async def join_token(self) -> None:
        req = self.req
        info, tok = await steps.create_token(
            self.client, self.namespace, ttl=req.ttl_s, description="kedge init"
        )
        cloud = (req.options.advertise_addresses or ["<cloud-address>"])[0]
        command = join_line(cloud, tok, req.mode, req.sets, procs.cloud_addresses(req.root))
        self.summary["join"] = {"id": info.id, "token": tok, "expires": info.as_dict()["expires"],
                                "command": command}  # fmt: skip


def _ref(result: ApplyResult) -> str:
    """kubectl's `deployment.apps/kedge-cloud` naming."""
    return ref(result.object) if result.object else result.describe().rsplit(" ", 1)[0]


def join_line(cloud: str, token: str, mode: str, sets: list[str], bound: dict[str, str]) -> str:
    """`kedge join --server H:P [--cert-port N] --token T`, with the ports the local cloud bound."""
    hub, cert = HUB_PORT, CERT_PORT
    if mode != "cluster":
        hub, cert = _port(sets, "hub.websocket_port", HUB_PORT), _port(sets, "hub.cert_port", CERT_PORT)
        for key in ("hub", "bootstrap"):
            port = bound.get(key, "").rpartition(":")[2]
            if port.isdigit():  # what the local cloud actually bound (port 0 in tests)
                hub, cert = (int(port), cert) if key == "hub" else (hub, int(port))
    extra = f" --cert-port {cert}" if cert != CERT_PORT else ""
    return f"kedge join --server {_hostport(cloud, hub)}{extra} --token {token}"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _override(sets: list[str], key: str) -> str | None:
    for item in reversed(sets):
        k, _, v = item.partition("=")
        if k.strip() == key:
            return v.strip()
    return None


def _port(sets: list[str], key: str, default: int) -> int:
    value = _override(sets, key)
    return int(value) if value and value.isdigit() else default


def local_ports(sets: list[str]) -> list[tuple[str, int]]:
    """The addresses a local cloud binds with these overrides (hub, certificate server, health)."""
    bind = _override(sets, "hub.bind") or "0.0.0.0"
    ports = [
        (bind, _port(sets, "hub.websocket_port", HUB_PORT)),
        (bind, _port(sets, "hub.cert_port", CERT_PORT)),
        (_override(sets, "stream.bind") or "0.0.0.0", _port(sets, "stream.port", STREAM_PORT)),
    ]
    health = _override(sets, "metrics_address") or HEALTH
    h, _, p = health.rpartition(":")
    ports.append((h or "127.0.0.1", int(p) if p.isdigit() else 10550))
    return ports
