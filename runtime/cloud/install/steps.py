"""The steps of `kedge init`, each one call the CLI numbers and renders (style.md: command = glue).

    cluster   apply manifests (Deployment runs the cloud), wait for availableReplicas and /readyz
    host      apply CRDs/RBAC/FlowSchema, write cloud.toml, start `kedge cloud run` detached
    embedded  start `kedge apiserver` detached, write <root>/etc/kedge/admin.kubeconfig, then host

Every step converges: re-running init re-applies (unchanged), re-uses the CA, keeps running
processes. The install record (<root>/var/lib/kedge/cloud/install.json) tells reset what to undo.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runtime.cloud.install import procs
from runtime.cloud.install import systemd as systemd_unit
from runtime.cloud.install.manifests import InstallOptions, cloud_config
from runtime.cloud.pki_store import PKIStore, TokenInfo
from runtime.config import apply_overrides, save
from runtime.errors import ConfigError, KedgeError, UsageError
from runtime.fsutil import missing, remove_created, write_atomic
from runtime.kube.client import KubeClient, make_client
from runtime.kube.errors import KubeNotFound
from runtime.kube.resources import DEPLOYMENTS
from runtime.paths import Paths
from runtime.pki import certs

InitMode = Literal["cluster", "host", "embedded"]
DEFAULT_APISERVER_PORT = 6443
DEFAULT_HEALTH = "127.0.0.1:10550"


@dataclass
class InstallRecord:
    mode: InitMode
    namespace: str
    kubeconfig: str  # the file used (empty: default lookup)

    @classmethod
    def path(cls, root: Path) -> Path:
        return Paths.of(root, "cloud").state / "install.json"

    def save(self, root: Path) -> None:
        write_atomic(self.path(root), json.dumps(self.__dict__), mode=0o600)

    @classmethod
    def load(cls, root: Path) -> InstallRecord | None:
        try:
            data = json.loads(cls.path(root).read_text())
            return cls(data["mode"], data["namespace"], data.get("kubeconfig", ""))
        except (OSError, ValueError, KeyError):
            return None


def local_kubeconfig(root: Path) -> Path | None:
    """The kubeconfig of the cluster the cloud under `root` was installed into: the embedded API
    server's admin kubeconfig, else the file `kedge init` recorded; None when neither exists."""
    admin = Paths.of(root, "cloud").admin_kubeconfig
    if admin.is_file():
        return admin
    record = InstallRecord.load(root)
    if record and record.kubeconfig and Path(record.kubeconfig).is_file():
        return Path(record.kubeconfig)
    return None


def connect(kubeconfig: Path | None, root: Path) -> KubeClient:
    """KubeClient by the usual lookup; when nothing is configured, the admin kubeconfig that
    `kedge init --embedded` wrote under `root`."""
    try:
        return make_client(kubeconfig)
    except ConfigError:
        local = Paths.of(root, "cloud").admin_kubeconfig
        if kubeconfig is not None or not local.is_file():
            raise
        return make_client(local)


def using(client: KubeClient) -> str:
    """Which kubeconfig a command uses (design.md §7)."""
    return f"using kubeconfig {client.source} ({client.server})"


async def ensure_pki(client: KubeClient, namespace: str) -> certs.CA:
    """Create (or adopt) the cluster CA now, so a token can be printed before the cloud is up."""
    store = PKIStore(client, namespace)
    ca = await store.ensure_ca()
    await store.signing_key()
    return ca


async def create_token(
    client: KubeClient, namespace: str, *, ttl: float, description: str = "", node: str = ""
) -> tuple[TokenInfo, str]:
    return await PKIStore(client, namespace).create_token(ttl=ttl, description=description, node=node)


async def wait_deployment(client: KubeClient, namespace: str, within: float) -> None:
    """availableReplicas ≥ 1, then /readyz through the Service (if the API server proxies services)."""
    deadline = time.monotonic() + within
    status: dict[str, Any] = {}
    while True:
        try:
            obj = await client.get(DEPLOYMENTS, "kedge-cloud", namespace=namespace)
            status = obj.get("status") or {}
        except KubeNotFound:
            status = {}
        if int(status.get("availableReplicas") or 0) >= 1:
            break
        if time.monotonic() > deadline:
            raise KedgeError(
                f"timed out after {within:.0f}s: deployment.apps/kedge-cloud in {namespace} has "
                f"{status.get('availableReplicas') or 0} available replicas",
                hint=f"kubectl -n {namespace} describe deployment kedge-cloud; kubectl -n {namespace} logs "
                "deploy/kedge-cloud",
            )
        await asyncio.sleep(1.0)
    path = f"/api/v1/namespaces/{namespace}/services/kedge-cloud:health/proxy/readyz"
    while True:
        try:
            await client.request("GET", path)
            return
        except KubeNotFound:
            return  # no service proxy (embedded API server): readiness already counted in availableReplicas
        except KedgeError as exc:
            if time.monotonic() > deadline:
                raise KedgeError(
                    f"timed out after {within:.0f}s: service/kedge-cloud in {namespace} does not answer "
                    f"/readyz ({exc})",
                    hint=f"kubectl -n {namespace} logs deploy/kedge-cloud",
                ) from exc
        await asyncio.sleep(1.0)


def write_host_config(
    root: Path, opts: InstallOptions, kubeconfig: Path | None, overrides: list[str]
) -> Path:
    """<root>/etc/kedge/cloud.toml for the local cloud process (host and embedded modes)."""
    cfg = cloud_config(opts)
    cfg.hub.bind = "0.0.0.0"
    cfg.metrics_address = DEFAULT_HEALTH
    cfg.kubeconfig = str(kubeconfig.resolve()) if kubeconfig else ""
    apply_overrides(cfg, overrides)
    path = Paths.of(root, "cloud").config_file
    save(cfg, path)
    return path


def start_cloud(root: Path, kubeconfig: Path | None, *, systemd: bool = False) -> tuple[int, bool]:
    """Start `kedge cloud run` unless one is already running under this root; (pid, started).

    With `systemd` (host mode on a machine whose PID 1 is systemd, root /) it becomes the unit
    kedge-cloud.service instead of a detached process."""
    if systemd and systemd_unit.available(root):
        Paths.of(root, "cloud").state.joinpath("addresses.json").unlink(missing_ok=True)
        return systemd_unit.install(kubeconfig.resolve() if kubeconfig else None), True
    pid = procs.running_pid(root, "cloud")
    if pid is not None:
        return pid, False
    Paths.of(root, "cloud").state.joinpath("addresses.json").unlink(missing_ok=True)
    args = ["cloud", "run", "--root", str(root)]
    if kubeconfig is not None:
        args += ["--kubeconfig", str(kubeconfig.resolve())]
    return procs.start_detached(root, "cloud", args), True


def start_apiserver(
    root: Path,
    port: int | None,
    timeout: float = 60.0,
    *,
    event_ttl: float | None = None,
    usage_socket: str = "",
) -> tuple[Path, int, bool]:
    """Start the embedded API server unless running; copy its kubeconfig to <root>/etc/kedge/.
    `event_ttl`: its --event-ttl (seconds); `usage_socket`: the cloud's status socket, where it reads
    the resource usage the edges report (metrics.k8s.io, `kubectl top`).

    `port` None: whatever port a running one has, else 6443. A running one on another port than the
    one asked for is an error (it is not restarted behind the user's back). A start that fails leaves
    nothing behind: process, pid file, log and the data directory it created are removed."""
    paths = Paths.of(root, "apiserver")
    data_dir = paths.state
    target = paths.admin_kubeconfig
    pid = procs.running_pid(root, "apiserver")
    if pid is not None:
        serving = _kubeconfig_port(data_dir / "admin.kubeconfig")
        if port and serving and port != serving:
            raise UsageError(
                f"the embedded API server already runs on port {serving} (pid {pid}); "
                f"--apiserver-port {port} would need it restarted",
                hint=f"drop --apiserver-port (or pass {serving}), or `kedge reset cloud` and init again",
            )
        source = procs.wait_file(data_dir / "admin.kubeconfig", pid, root, "apiserver", timeout)
        write_atomic(target, source.read_bytes(), mode=0o600)
        return target, pid, False
    created = missing(data_dir, paths.log_file)
    (data_dir / "admin.kubeconfig").unlink(missing_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = DEFAULT_APISERVER_PORT if port is None else port
    args = ["apiserver", "--data-dir", str(data_dir), "--port", str(port), "--bind", "127.0.0.1"]
    if event_ttl is not None:
        args += ["--event-ttl", f"{event_ttl:g}"]
    if usage_socket:
        args += ["--usage-socket", usage_socket]
    pid = procs.start_detached(root, "apiserver", args)
    try:
        source = procs.wait_file(data_dir / "admin.kubeconfig", pid, root, "apiserver", timeout)
    except KedgeError:
        procs.stop_process(root, "apiserver")
        remove_created(created)
        raise
    write_atomic(target, source.read_bytes(), mode=0o600)
    return target, pid, True


def _kubeconfig_port(path: Path) -> int | None:
    """The port of the server a kubeconfig written by `kedge apiserver` names."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.strip().partition(": ")
        port = value.strip().strip("'\"").rpartition(":")[2]
        if key == "server" and port.isdigit():
            return int(port)
    return None


async def wait_api(client: KubeClient, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            await client.request("GET", "/version")
            return
        except KedgeError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


def remove_local_files(root: Path, *, embedded: bool, purge: bool) -> list[str]:
    """What init wrote locally for the cloud (never an edge's files); apiserver data only with purge."""
    cloud = Paths.of(root, "cloud")
    removed = []
    apiserver = Paths.of(root, "apiserver")
    targets: list[Path] = [cloud.config_file, cloud.state, cloud.pki, cloud.status_socket, cloud.log_file]
    if embedded:
        targets += [cloud.admin_kubeconfig, apiserver.log_file]
        if purge:
            targets.append(apiserver.state)
    for t in targets:
        if t.is_dir():
            shutil.rmtree(t, ignore_errors=True)
            removed.append(str(t))
        elif t.exists():
            t.unlink(missing_ok=True)
            removed.append(str(t))
    for d in (cloud.pki.parent, cloud.etc, cloud.state.parent, cloud.log_file.parent, cloud.pid_file.parent):
        with contextlib.suppress(OSError):  # kedge's own directories, once nothing is left in them
            d.rmdir()
    return removed
