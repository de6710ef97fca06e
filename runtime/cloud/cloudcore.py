"""`kedge cloud run`: the cloud process, assembled here and nowhere else (as k3s's ``run(cfg, stop)``).

    run(cfg, stop, serve_edges=None, root=..., kubeconfig=...)

1. ``build_context`` (context.py): API client, CA, PKI store, serving certificate, metrics registry.
2. ``build_edges``: the CloudHub (:10000), the cloud controllers (controllers/) and the Device controller
   (devices/), each handed what it needs — the API client, the hub, its ack-state store, the registry.
3. Named root tasks until ``stop`` is set or one of them ends (style.md "root tasks"): the health server
   (/healthz, /readyz, /metrics), the certificate bootstrap server (:10002, bootstrap.py), the
   serving-certificate lifecycle, token GC, and the edge side: the hub, the controllers (with the status
   socket, status_socket.py) and the Device controller. Any root task ending stops the process; the
   failure that ended it is re-raised after the others were cancelled.

Once health, bootstrap and the hub listen, ``addresses.json`` tells scripts and tests the bound ports.
Tests replace the edge side with their own tasks (``serve_edges``: each ``async def f(ctx)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runtime import __version__
from runtime.cloud import bootstrap
from runtime.cloud.context import CloudContext, build_context
from runtime.cloud.controllers import CloudControllers
from runtime.cloud.controllers.replicas import default_identity
from runtime.cloud.controllers.syncstore import SyncStore
from runtime.cloud.devices import ACK_OWNER, DeviceController
from runtime.cloud.hub.server import CloudHub
from runtime.cloud.pki_store import REISSUE_BEFORE
from runtime.cloud.status_socket import serve_status
from runtime.cloud.streams.serve import serve_streams
from runtime.cloud.streams.tunnels import Tunnels
from runtime.cloud.tunnel.endpoint import KubeletEndpoints
from runtime.cloud.tunnel.replica import TunnelReplica, endpoint_of, hold
from runtime.cloud.usage import UsageStore
from runtime.cloud.usage.kubelet import by_address
from runtime.cloud.usage.store import UsageMetrics
from runtime.config import CloudConfig
from runtime.errors import ConfigError, UsageError
from runtime.fsutil import read_pid, write_atomic
from runtime.listen import CLOUD_HINT, AddressInUse, start_site
from runtime.paths import Paths
from runtime.pki import certs

log = logging.getLogger("kedge.cloud")
DEFAULT_HEALTH = "127.0.0.1:10550"
CERT_CHECK_SECONDS = 3600.0
TOKEN_GC_SECONDS = 600.0
CloudTask = Callable[[CloudContext], Awaitable[None]]


@dataclass
class Edges:
    """What serves the edges, built before anything runs so that each part is handed the others."""

    hub: CloudHub
    controllers: CloudControllers
    devices: DeviceController
    endpoints: KubeletEndpoints
    tunnel: TunnelReplica | None
    tunnels: Tunnels
    usage: UsageStore


def kubelet_endpoints(ctx: CloudContext) -> tuple[KubeletEndpoints, TunnelReplica | None]:
    """``[kubelet_endpoint]``: what this replica writes as its nodes' kubelet endpoint (tunnel/)."""
    cfg = ctx.cfg

    def stream() -> str | None:
        return ctx.addresses.get("stream")

    section, advertise = cfg.kubelet_endpoint, cfg.advertise_addresses
    tunnel = None
    if section.mode == "dnat":
        tunnel = TunnelReplica(ctx.client, cfg.namespace, section, advertise, stream)
    return endpoint_of(section, advertise, stream, tunnel), tunnel


def build_edges(ctx: CloudContext) -> Edges:
    """The hub from ``[hub]``, the controllers and the Device controller wired to it and to the API."""
    cfg = ctx.cfg
    hub = CloudHub.from_config(cfg.hub, ssl_context=ctx.hub_ssl, registry=ctx.registry)
    endpoints, tunnel = kubelet_endpoints(ctx)
    controllers = CloudControllers(
        ctx.client,
        hub,
        namespace=cfg.namespace,
        replica=default_identity(ctx.paths.root),  # stable across restarts: resumes its own nodes
        lease_renew=cfg.lease.renew_seconds,
        lease_seconds=cfg.lease.duration_seconds,
        autonomy=float(cfg.autonomy_window_seconds),
        endpoints=endpoints if cfg.kubelet_endpoint.mode != "none" else None,
    )
    if tunnel is not None:
        peers = controllers.replicas
        tunnel.identify(peers.identity, lambda: set(peers.live) if peers.observed else None)
    store = SyncStore(ctx.client, cfg.namespace, owner=ACK_OWNER, epoch_suffix="device-epoch")
    devices = DeviceController(ctx.client, hub, store=store, registry=ctx.registry)
    ctx.leader = controllers.replicas.is_leader  # singleton work (token GC) on one replica only
    ctx.ready_checks["controllers"] = controllers.synced
    tunnels = Tunnels(
        hub,
        max_per_node=int(cfg.stream.max_sessions_per_node),
        open_timeout=cfg.stream.open_timeout_seconds,
        registry=ctx.registry,
    )
    hub.stream_expected, hub.on_stream = tunnels.expected, tunnels.accept
    hub.subscribe(on_disconnect=tunnels.on_disconnect)
    usage = UsageStore()  # the edges' resource usage, for `kubectl top` (usage/)
    ctx.registry.register(UsageMetrics(usage))
    hub.subscribe(on_message=usage.on_message, on_disconnect=usage.on_disconnect)
    return Edges(hub, controllers, devices, endpoints, tunnel, tunnels, usage)


async def serve_hub(ctx: CloudContext, hub: CloudHub, started: asyncio.Event) -> None:
    """CloudHub on ``[hub] bind:websocket_port`` until cancelled (readiness check "cloudhub")."""
    await hub.start()
    await _listening(ctx, "hub", f"{ctx.cfg.hub.bind}:{hub.bound_port}", started, hub.stop, check="cloudhub")


async def _listening(
    ctx: CloudContext,
    name: str,
    address: str,
    started: asyncio.Event,
    close: Callable[[], Awaitable[None]],
    check: str | None = None,
) -> None:
    """A server listens: publish its address (and readiness check), say so, and hold until cancelled;
    then it is closed (and its check fails)."""
    ctx.addresses[name] = address
    if check:
        ctx.ready_checks[check] = lambda: True
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        if check:
            ctx.ready_checks[check] = lambda: False
        await close()


async def _controllers(
    ctx: CloudContext, ctl: CloudControllers, usage: UsageStore, hub_up: asyncio.Event
) -> None:
    """The cloud controllers once the hub listens, and the status socket beside them."""
    await hub_up.wait()
    status_task = asyncio.create_task(serve_status(ctx, ctl, usage), name="cloud-status")
    try:
        await ctl.run()
    finally:
        status_task.cancel()
        await asyncio.gather(status_task, return_exceptions=True)


async def _kubelet_endpoint(ctx: CloudContext, edges: Edges) -> None:
    """dnat: this replica's tunnel port claimed; then the nodes connected here get the endpoint."""
    hub, world = edges.hub, edges.controllers.world
    held = hold(edges.endpoints, ctx.client, lambda: [s.node for s in hub.sessions()], world.nodes.get)
    await asyncio.gather(held, *([edges.tunnel.run()] if edges.tunnel else []))


async def _devices(hub: CloudHub, ctl: DeviceController, hub_up: asyncio.Event) -> None:
    """The Device controller once the hub listens, subscribed to the hub's edge events."""
    await hub_up.wait()
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


async def _streams(ctx: CloudContext, edges: Edges, hub_up: asyncio.Event, started: asyncio.Event) -> None:
    """The stream endpoint API servers dial for logs/exec/attach/port-forward (runtime/cloud/streams),
    and metrics-server for each node's /metrics/resource and /stats/summary (runtime/cloud/usage)."""

    async def listening(address: str, close: Callable[[], Awaitable[None]]) -> None:
        await _listening(ctx, "stream", address, started, close)

    await serve_streams(ctx, edges.tunnels, hub_up, listening, usage=by_address(edges.usage))


def _split_addr(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{what} = {text!r}: expected host:port, e.g. 127.0.0.1:10550")
    return host.strip("[]") or "0.0.0.0", int(port)


async def _all_set(*events: asyncio.Event) -> None:
    for event in events:
        await event.wait()


async def _wait(event: asyncio.Event) -> None:
    await event.wait()


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
    await _listening(ctx, "health", f"{host}:{bound}", started, runner.cleanup)


async def _bootstrap(ctx: CloudContext, started: asyncio.Event) -> None:
    server = bootstrap.Bootstrap(
        ctx.ca, ctx.store, ctx.client, cert_days=ctx.cfg.hub.cert_validity_days, registry=ctx.registry
    )
    runner, port = await bootstrap.serve(
        server.app(), ctx.cfg.hub.bind, ctx.cfg.hub.cert_port, ctx.bootstrap_ssl
    )
    await _listening(
        ctx, "bootstrap", f"{ctx.cfg.hub.bind}:{port}", started, runner.cleanup, check="bootstrap"
    )


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
    serve_edges: Iterable[CloudTask] | None = None,
    *,
    root: Path = Path("/"),
    kubeconfig: Path | None = None,
    context: CloudContext | None = None,
) -> None:
    """Run the cloud until `stop` is set (SIGTERM) or a root task ends (its error is re-raised).
    ``serve_edges`` None: kedge's own edge side (``build_edges``); else these tasks instead (tests)."""
    ctx = context or await build_context(cfg, root, kubeconfig)
    tasks: dict[asyncio.Task[None], str] = {}

    def spawn(name: str, coro: Awaitable[None]) -> None:
        tasks[asyncio.ensure_future(coro)] = name

    try:
        health_up, boot_up, hub_up, stream_up = (asyncio.Event() for _ in range(4))
        spawn("health", _health(ctx, health_up))
        spawn("bootstrap", _bootstrap(ctx, boot_up))
        spawn("serving-cert", _serving_lifecycle(ctx))
        spawn("token-gc", _token_gc(ctx))
        if serve_edges is None:
            edges = build_edges(ctx)
            spawn("cloudhub", serve_hub(ctx, edges.hub, hub_up))
            spawn("controllers", _controllers(ctx, edges.controllers, edges.usage, hub_up))
            spawn("devices", _devices(edges.hub, edges.devices, hub_up))
            if ctx.cfg.kubelet_endpoint.mode != "none":
                spawn("kubelet-endpoint", _kubelet_endpoint(ctx, edges))
            spawn("streams", _streams(ctx, edges, hub_up, stream_up))
        else:
            hub_up.set()
            stream_up.set()
            for i, serve in enumerate(serve_edges):
                spawn(getattr(serve, "__name__", f"edges-{i}"), serve(ctx))
        spawn("stop", _wait(stop))
        up = asyncio.ensure_future(_all_set(health_up, boot_up, hub_up, stream_up))
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
