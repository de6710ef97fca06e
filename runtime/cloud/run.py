"""`kedge cloud run`: the cloud process root (style.md "root tasks", design.md §3 to §5).

    run(cfg, stop, extra_tasks=(...), root=..., kubeconfig=...)

builds a CloudContext (API client, CA, PKI store, serving certificate, metrics registry), then runs
named root tasks until `stop` is set or one of them ends: the health server (/healthz, /readyz,
/metrics), the certificate bootstrap server (:10002), the serving-certificate lifecycle, token GC,
and whatever `extra_tasks` the channel adds (CloudHub on :10000, controllers). Any root task ending
stops the process; the failure that ended it is re-raised after the others were cancelled.

Extra tasks get the context and use `ctx.hub_ssl` (client certificate required, re-loaded in place
when the serving certificate is re-issued) and `ctx.ready_checks[name] = callable` to gate /readyz.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from runtime import __version__
from runtime.cloud import bootstrap, hub_task
from runtime.cloud.controllers.syncstore import SyncStore
from runtime.cloud.devices import ACK_OWNER, DeviceController
from runtime.config import CloudConfig
from runtime.errors import ConfigError, KedgeError, UsageError
from runtime.fsutil import read_pid, write_atomic
from runtime.kube.client import KubeClient, make_client
from runtime.kube.errors import KubeNotFound
from runtime.listen import CLOUD_HINT, AddressInUse, start_site
from runtime.paths import Paths
from runtime.pki import certs, tls
from runtime.pki.store import REISSUE_BEFORE, PKIStore

log = logging.getLogger("kedge.cloud")
DEFAULT_HEALTH = "127.0.0.1:10550"
CERT_CHECK_SECONDS = 3600.0
TOKEN_GC_SECONDS = 600.0
ExtraTask = Callable[["CloudContext"], Awaitable[None]]

# The tasks `kedge cloud run` adds to the root, as "module:function" (each `async def f(ctx)`):
# CloudHub (:10000) and the controllers register here, one line each.
EXTRA_TASKS: list[str] = ["runtime.cloud.hub_task:serve", "runtime.cloud.controllers:run"]


def default_extra_tasks() -> list[ExtraTask]:
    """Import the registered extra tasks (an import error is a packaging bug: let it surface), then
    the ones wired here explicitly (the Device controller)."""
    out: list[ExtraTask] = []
    for spec in EXTRA_TASKS:
        module, _, name = spec.partition(":")
        out.append(getattr(importlib.import_module(module), name))
    out.append(devices)
    return out


async def devices(ctx: CloudContext) -> None:
    """Root task: the Device controller (runtime/cloud/devices/), given what it needs — the API client,
    the hub it sends through and is called back by, and its own ack-state store."""
    hub = await hub_task.hub_for(ctx)
    store = SyncStore(ctx.client, ctx.cfg.namespace, owner=ACK_OWNER, epoch_suffix="device-epoch")
    ctl = DeviceController(ctx.client, hub, store=store, registry=ctx.registry)
    unsubscribe = hub.subscribe(
        on_message=ctl.on_message,
        on_connect=ctl.on_connect,
        on_disconnect=ctl.on_disconnect,
        on_ack=ctl.on_ack,
    )
    try:
        for info in hub.sessions():  # edges that connected before we subscribed
            await ctl.on_connect(info)
        await ctl.run()
    finally:
        unsubscribe()


@dataclass
class CloudContext:
    """What every cloud task shares. Built once by `run`; tasks must not replace its members."""

    cfg: CloudConfig
    paths: Paths
    client: KubeClient
    store: PKIStore
    ca: certs.CA
    registry: CollectorRegistry
    serving_cert: bytes = b""  # DER
    serving_key: bytes = b""  # DER
    hub_ssl: Any = None  # ssl.SSLContext, client certificate required (CloudHub :10000)
    bootstrap_ssl: Any = None  # ssl.SSLContext, client certificate optional (:10002)
    ready_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # what each server actually bound
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    in_cluster: bool = False  # running in a pod with the ServiceAccount's credentials
    # Whether this replica does the cluster's singleton work (token GC); the controllers replace it with
    # their replica leadership, a cloud without them is alone.
    leader: Callable[[], bool] = field(default=lambda: True)
    serving_expiry: Gauge = field(init=False)

    def __post_init__(self) -> None:
        self.serving_expiry = Gauge(
            "kedge_cloud_serving_cert_expiry_timestamp_seconds",
            "Expiry of the CloudHub serving certificate (unix time)",
            registry=self.registry,
        )

    def ready(self) -> dict[str, bool]:
        out = {}
        for name, check in self.ready_checks.items():
            try:
                out[name] = bool(check())
            except Exception:
                out[name] = False
        return out

    def advertise(self) -> list[str]:
        """SANs of the serving certificate: the advertise addresses (default loopback) and, in a
        pod, the Service's DNS names so edges inside the cluster can verify it too."""
        out = list(self.cfg.advertise_addresses) or ["127.0.0.1", "localhost"]
        if self.in_cluster:
            ns = self.cfg.namespace
            out += [f"kedge-cloud.{ns}.svc", f"kedge-cloud.{ns}.svc.cluster.local"]
        return out

    def install_serving(self, cert_der: bytes, key_der: bytes) -> None:
        """Use a (new) serving certificate: existing ssl contexts are re-loaded in place, so servers
        already listening hand it to every new handshake without a restart."""
        self.serving_cert, self.serving_key = cert_der, key_der
        if self.hub_ssl is None:
            self.hub_ssl = tls.server_context(cert_der, key_der, self.ca.cert_der, require_client_cert=True)
            self.bootstrap_ssl = tls.server_context(cert_der, key_der, self.ca.cert_der)
        else:
            for ctx in (self.hub_ssl, self.bootstrap_ssl):
                tls.reload_chain(ctx, cert_der, key_der)
        cert = certs.load_cert(cert_der)
        self.serving_expiry.set(certs.not_after(cert).timestamp())


def _split_addr(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{what} = {text!r}: expected host:port, e.g. 127.0.0.1:10550")
    return host.strip("[]") or "0.0.0.0", int(port)


def _kubeconfig_flag(cfg: CloudConfig, kubeconfig: Path | None) -> Path | None:
    """--kubeconfig, else the config's kubeconfig if that file exists, else the usual lookup."""
    if kubeconfig is not None:
        return kubeconfig
    if cfg.kubeconfig and Path(cfg.kubeconfig).is_file():
        return Path(cfg.kubeconfig)
    return None


async def _all_set(*events: asyncio.Event) -> None:
    for event in events:
        await event.wait()


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


async def build_context(cfg: CloudConfig, root: Path, kubeconfig: Path | None = None) -> CloudContext:
    """Connect, load-or-create the CA (persisted before use) and the serving certificate."""
    paths = Paths.of(root, "cloud")
    client = make_client(_kubeconfig_flag(cfg, kubeconfig))
    try:
        store = PKIStore(client, cfg.namespace)
        try:
            ca = await store.ensure_ca()
        except KubeNotFound as exc:
            raise KedgeError(
                f"cannot keep the CA in namespace {cfg.namespace} of {client.server}: {exc}",
                hint="install the cloud's namespace and CRDs first: kedge init --host (or kedge init)",
            ) from exc
        ctx = CloudContext(cfg, paths, client, store, ca, CollectorRegistry())
        ctx.in_cluster = client.source_info.source == "in-cluster"
        cert, key = await store.ensure_serving(ca, ctx.advertise(), cfg.hub.cert_validity_days)
        ctx.install_serving(cert, key)
    except BaseException:
        await client.close()
        raise
    Gauge("kedge_cloud_info", "kedge cloud build", ["version"], registry=ctx.registry).labels(
        __version__
    ).set(1)
    return ctx


# ---------------------------------------------------------------------------- root tasks


async def _health(ctx: CloudContext, started: asyncio.Event) -> None:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        checks = ctx.ready()
        ok = all(checks.values())
        body = "".join(f"[{'+' if v else '-'}]{k} {'ok' if v else 'failed'}\n" for k, v in checks.items())
        return web.Response(status=200 if ok else 503, text=body + ("ok\n" if ok else "not ready\n"))

    async def metrics(_: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(ctx.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    host, port = _split_addr(ctx.cfg.metrics_address or DEFAULT_HEALTH, "metrics_address")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        bound = await start_site(runner, host, port, what="kedge cloud health endpoint", hint=CLOUD_HINT)
    except AddressInUse:
        await runner.cleanup()
        raise
    ctx.addresses["health"] = f"{host}:{bound}"
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _bootstrap(ctx: CloudContext, started: asyncio.Event) -> None:
    server = bootstrap.Bootstrap(
        ctx.ca, ctx.store, ctx.client, cert_days=ctx.cfg.hub.cert_validity_days, registry=ctx.registry
    )
    runner, port = await bootstrap.serve(
        server.app(), ctx.cfg.hub.bind, ctx.cfg.hub.cert_port, ctx.bootstrap_ssl
    )
    ctx.addresses["bootstrap"] = f"{ctx.cfg.hub.bind}:{port}"
    ctx.ready_checks["bootstrap"] = lambda: True
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _serving_lifecycle(ctx: CloudContext, every: float = CERT_CHECK_SECONDS) -> None:
    """Re-issue the serving certificate from the CA when fewer than 30 days remain."""
    while True:
        await asyncio.sleep(every)
        try:
            if certs.remaining(certs.load_cert(ctx.serving_cert)) < REISSUE_BEFORE:
                cert, key = await ctx.store.ensure_serving(
                    ctx.ca, ctx.advertise(), ctx.cfg.hub.cert_validity_days
                )
                ctx.install_serving(cert, key)
                log.info(
                    "serving certificate re-issued, valid until %s", certs.not_after(certs.load_cert(cert))
                )
        except Exception as exc:  # retried next round; a failing API must not kill the cloud
            log.warning("serving certificate check failed: %s", exc)


async def _token_gc(ctx: CloudContext, every: float = TOKEN_GC_SECONDS) -> None:
    """Delete expired join tokens, on the leading replica only (others would race it)."""
    while True:
        try:
            gone = await ctx.store.gc_tokens() if ctx.leader() else []
            if gone:
                log.info("garbage-collected %d expired join token(s)", len(gone))
        except Exception as exc:
            log.warning("token garbage collection failed: %s", exc)
        await asyncio.sleep(every)


def _write_addresses(ctx: CloudContext) -> None:
    """Tell scripts and tests where we listen (ports may be 0 = chosen by the kernel)."""
    body = {**ctx.addresses, "pid": os.getpid(), "started": time.time()}
    write_atomic(ctx.paths.state / "addresses.json", json.dumps(body), mode=0o644)


@contextlib.contextmanager
def foreground(root: Path) -> Iterator[None]:
    """`kedge cloud run` from a terminal: refuse when a cloud already runs under `root` (pid file of
    init's detached cloud, or of another foreground one), and hold the pid file while running."""
    from runtime.cloud.install.procs import running_pid

    pid_file = Paths.of(root, "cloud").pid_file
    other = running_pid(root, "cloud")
    if other is not None and other not in (os.getpid(), os.getppid()):  # ppid: the one-file bootloader
        raise UsageError(
            f"a kedge cloud is already running under {root} (pid {other}, {pid_file})",
            hint="`kedge status` shows it; stop it with `kedge reset cloud` (or kill {other}) first".replace(
                "{other}", str(other)
            ),
        )
    claimed = other is None
    if claimed:
        try:
            write_atomic(pid_file, f"{os.getpid()}\n", mode=0o644)
        except OSError:  # a read-only root (a container without /run/kedge mounted): run without one
            claimed = False
    try:
        yield
    finally:
        if claimed and read_pid(pid_file) == os.getpid():
            pid_file.unlink(missing_ok=True)


async def run(
    cfg: CloudConfig,
    stop: asyncio.Event,
    extra_tasks: Iterable[ExtraTask] = (),
    *,
    root: Path = Path("/"),
    kubeconfig: Path | None = None,
    context: CloudContext | None = None,
) -> None:
    """Run the cloud until `stop` is set (SIGTERM) or a root task ends (its error is re-raised)."""
    ctx = context or await build_context(cfg, root, kubeconfig)
    ctx.stop = stop
    tasks: dict[asyncio.Task[None], str] = {}

    def spawn(name: str, coro: Awaitable[None]) -> None:
        tasks[asyncio.ensure_future(coro)] = name

    try:
        health_up, boot_up = asyncio.Event(), asyncio.Event()
        spawn("health", _health(ctx, health_up))
        spawn("bootstrap", _bootstrap(ctx, boot_up))
        spawn("serving-cert", _serving_lifecycle(ctx))
        spawn("token-gc", _token_gc(ctx))
        for i, extra in enumerate(extra_tasks):
            spawn(getattr(extra, "__name__", f"extra-{i}"), extra(ctx))
        spawn("stop", _wait(stop))
        up = asyncio.ensure_future(_all_set(health_up, boot_up))
        done, _ = await asyncio.wait({up, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        if up in done:
            _write_addresses(ctx)
            log.info("kedge cloud %s running: %s", __version__, ctx.addresses)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        else:
            up.cancel()
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            exc = None if task.cancelled() else task.exception()
            if task in tasks and exc is not None:
                log.error("root task %s failed: %s", tasks[task], exc)
                raise exc
    finally:
        with contextlib.suppress(Exception):
            (ctx.paths.state / "addresses.json").unlink(missing_ok=True)
        await ctx.client.close()
