"""`kedge init`: install the cloud role (into the cluster, as a host process, or fully embedded)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer

from kubeedge_cli import render
from kubeedge_cli.commands.cloud import connect
from kubeedge_cli.commands.token import parse_duration
from kubeedge_cli.options import Format, KubeconfigOpt, Settings, global_options
from runtime.errors import UsageError

app = typer.Typer()

EXAMPLES = """
Examples:

  kedge init --advertise-address 203.0.113.10          # into the current kubeconfig's cluster
  kedge init --dry-run -o yaml | kubectl apply -f -    # review, then apply yourself
  kedge init --embedded --root /srv/kedge              # API server + cloud on this machine
"""


def _print_checks(results: list[Any]) -> None:
    for r in results:
        tag = {"ok": "ok", "warning": "warn", "error": "FAIL"}[r.level]
        render.message(f"  [{tag}] {r.name}: {r.message}")


@app.command(epilog=EXAMPLES)
@global_options("output", "kubeconfig", "root")
def init(
    s: Settings,
    host: Annotated[
        bool, typer.Option("--host", help="Run the cloud as a local process (kubeconfig's cluster).")
    ] = False,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Start the embedded API server and the cloud on this machine.")
    ] = False,
    advertise: Annotated[
        list[str] | None,
        typer.Option("--advertise-address", help="IP or DNS name edges use to reach the cloud (repeatable)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Cloud image (default kedge/kedge:<version>).")
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", help="Cloud replicas (in-cluster).")] = 1,
    service_type: Annotated[
        str, typer.Option("--service-type", help="ClusterIP, NodePort or LoadBalancer.")
    ] = "ClusterIP",
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="cloud.toml override a.b=c (host/embedded).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifests; change nothing.")] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for the cloud to be ready.")
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long to wait for readiness.")] = "5m",
    no_token: Annotated[bool, typer.Option("--no-token", help="Do not create a join token.")] = False,
    token_ttl: Annotated[str, typer.Option("--token-ttl", help="Lifetime of the printed token.")] = "24h",
    ignore: Annotated[
        str,
        typer.Option(
            "--ignore-preflight-errors", help="Checks to downgrade to warnings: NAME[,NAME...] or all."
        ),
    ] = "",
    patch_daemonsets: Annotated[
        bool,
        typer.Option("--patch-daemonsets", help="Keep existing DaemonSets off edge nodes (node affinity)."),
    ] = False,
    apiserver_port: Annotated[
        int | None, typer.Option("--apiserver-port", help="Embedded API server port (default 6443).")
    ] = None,
    kubeconfig: KubeconfigOpt = None,  # as given to init itself: --embedded refuses it
) -> None:
    """Install the kedge cloud: CRDs, RBAC, CA, the cloud itself; print the `kedge join` line."""
    if host and embedded:
        raise UsageError(
            "--host and --embedded exclude each other (--embedded already runs the cloud locally)"
        )
    if embedded and kubeconfig is not None:
        raise UsageError("--embedded starts its own API server; --kubeconfig does not apply")
    from runtime.cloud.install import InstallOptions

    opts = InstallOptions(
        mode="cluster" if not (host or embedded) else "host",
        replicas=replicas,
        service_type=service_type,
        advertise_addresses=list(advertise or []),
    )
    if image:
        opts.image = image
    opts.validate()
    wait_s, ttl_s = parse_duration(timeout), parse_duration(token_ttl)
    mode = "embedded" if embedded else "host" if host else "cluster"
    from runtime.cloud.init_procs import exclusive

    with contextlib.nullcontext() if dry_run else exclusive(s.root, "init"):
        import asyncio  # not before a command is known (issue 14: import diet)

        asyncio.run(
            _init(s, opts, mode, sets or [], dry_run=dry_run, wait=not no_wait, wait_s=wait_s,
                  token=not no_token, ttl_s=ttl_s, ignore=ignore.split(","), patch_ds=patch_daemonsets,
                  apiserver_port=apiserver_port)
        )  # fmt: skip


async def _init(
    s: Settings, opts: Any, mode: str, sets: list[str], *, dry_run: bool, wait: bool, wait_s: float,
    token: bool, ttl_s: float, ignore: list[str], patch_ds: bool, apiserver_port: int | None,
) -> None:  # fmt: skip
    import asyncio

    from runtime.cloud import init_existing as existing
    from runtime.cloud import init_preflight as pre
    from runtime.cloud import init_procs, init_run
    from runtime.cloud.install import render as render_objects
    from runtime.cloud.install import to_yaml
    from runtime.kube.apply import apply_objects

    root = s.root
    if dry_run:
        objs = render_objects(opts, served=None if mode == "embedded" else await _served(s))
        if s.output is Format.json:
            render.data(objs, Format.json)
        else:
            print(to_yaml(objs), end="", flush=True)
        return

    total = 6 + (1 if mode == "embedded" else 0)
    steps = render.Steps(total)
    kubeconfig = s.kubeconfig
    if mode == "embedded":
        _check_apiserver_port(root, apiserver_port, ignore)
        with steps.step("starting the embedded API server"):
            path, pid, started = await asyncio.to_thread(init_run.start_apiserver, root, apiserver_port)
            kubeconfig = path
            render.message(f"  apiserver pid {pid} ({'started' if started else 'already running'}), "
                           f"kubeconfig {path}")  # fmt: skip
    client = connect(kubeconfig, root)
    kubeconfig = kubeconfig or client.source_info.path  # the local cloud process uses the same file
    summary: dict[str, Any] = {"mode": mode}
    async with client:
        if mode == "embedded":
            await init_run.wait_api(client, 60)
        with steps.step("preflight checks"):
            pf = pre.Preflight()
            await pre.check_api(pf, client)
            await pre.check_permissions(pf, client)
            pre.check_addresses(pf, opts.advertise_addresses)
            if mode != "cluster" and init_procs.running_pid(root, "cloud") is None:
                pre.check_ports(pf, _local_ports(opts, sets))
            objs = await existing.check_cluster(pf, client, opts.namespace, render_objects(opts))
            await pre.check_daemonsets(pf, client)
            _print_checks(pf.enforce(ignore))
            if patch_ds and pf.daemonsets:
                patched = await pre.patch_daemonsets(client, pf.daemonsets)
                render.message(
                    f"  patched {len(patched)} DaemonSet(s) to stay off edge nodes: {', '.join(patched)}"
                )
        with steps.step("applying manifests"):
            objs, kept = existing.to_apply(pf, objs)
            results = await apply_objects(client, objs)
            lines = [(k, "kept") for k in kept] + [(_ref(r), r.action) for r in results]
            summary["objects"] = [{"object": o, "result": a} for o, a in lines]
            if s.output is Format.table:
                for o, a in lines:
                    print(f"{o} {a}", flush=True)
        with steps.step("certificate authority"):
            ca = await init_run.ensure_pki(client, opts.namespace)
            summary["caHash"] = "sha256:" + ca.hash
            render.message(f"  CA sha256:{ca.hash}")
        with steps.step("starting the cloud" if mode != "cluster" else "cloud deployment applied"):
            record_kc = str(kubeconfig.resolve()) if kubeconfig else ""
            init_run.InstallRecord(mode, opts.namespace, record_kc).save(root)  # type: ignore[arg-type]
            if mode != "cluster":
                cfg_path = init_run.write_host_config(root, opts, kubeconfig, sets)
                pid, started = await asyncio.to_thread(
                    init_run.start_cloud, root, kubeconfig, systemd=mode == "host"
                )
                summary["cloudPid"] = pid
                state = "started" if started else "already running"
                render.message(f"  kedge cloud run pid {pid} ({state}), config {cfg_path}")
        with steps.step("waiting for the cloud to be ready" if wait else "not waiting (--no-wait)"):
            if wait and mode == "cluster":
                await init_run.wait_deployment(client, opts.namespace, wait_s)
            elif wait:
                url = await asyncio.to_thread(init_procs.wait_cloud_ready, root, summary["cloudPid"], wait_s)
                summary["health"] = url
        with steps.step("join token" if token else "no join token (--no-token)"):
            if token:
                info, tok = await init_run.create_token(
                    client, opts.namespace, ttl=ttl_s, description="kedge init"
                )
                cloud = (opts.advertise_addresses or ["<cloud-address>"])[0]
                command = _join_line(cloud, tok, mode, sets, init_procs.cloud_addresses(root))
                summary["join"] = {"id": info.id, "token": tok, "expires": info.as_dict()["expires"],
                                   "command": command}  # fmt: skip
    if mode == "embedded":
        summary["kubeconfig"] = str(kubeconfig)
    _finish(s, summary, mode)


async def _served(s: Settings) -> set[str] | None:
    """What the kubeconfig's server serves, for a dry run that renders for it; None (the newest
    versions, said on stderr) when there is no reachable server."""
    from runtime.errors import KedgeError

    try:
        async with connect(s.kubeconfig, s.root) as client:
            return await client.served_versions()
    except KedgeError as exc:
        render.message(f"  no API server to render for ({exc}): rendering the newest API versions")
        return None


def _check_apiserver_port(root: Any, port: int | None, ignore: list[str]) -> None:
    """The embedded API server starts before the other checks can run: check its port first."""
    from runtime.cloud import init_preflight as pre
    from runtime.cloud import init_procs, init_run

    if port == 0 or init_procs.running_pid(root, "apiserver") is not None:
        return
    pf = pre.Preflight()
    pre.check_ports(pf, [("127.0.0.1", port or init_run.DEFAULT_APISERVER_PORT)])
    _print_checks(pf.enforce(ignore))


def _ref(result: Any) -> str:
    """kubectl's `deployment.apps/kedge-cloud` naming."""
    from runtime.cloud.install_versions import ref

    return ref(result.object) if result.object else result.describe().rsplit(" ", 1)[0]


def _join_line(cloud: str, token: str, mode: str, sets: list[str], bound: dict[str, str]) -> str:
    """`kedge join --server H:P [--cert-port N] --token T`, with the ports the local cloud bound."""
    hub, cert = 10000, 10002
    if mode != "cluster":
        hub = _hub_port(sets)
        value = _override(sets, "hub.cert_port")
        cert = int(value) if value and value.isdigit() else 10002
        for key in ("hub", "bootstrap"):
            port = bound.get(key, "").rpartition(":")[2]
            if port.isdigit():  # what the local cloud actually bound (port 0 in tests)
                hub, cert = (int(port), cert) if key == "hub" else (hub, int(port))
    extra = f" --cert-port {cert}" if cert != 10002 else ""
    return f"kedge join --server {_hostport(cloud, hub)}{extra} --token {token}"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _override(sets: list[str], key: str) -> str | None:
    for item in reversed(sets):
        k, _, v = item.partition("=")
        if k.strip() == key:
            return v.strip()
    return None


def _hub_port(sets: list[str]) -> int:
    value = _override(sets, "hub.websocket_port")
    return int(value) if value and value.isdigit() else 10000


def _local_ports(opts: Any, sets: list[str]) -> list[tuple[str, int]]:
    bind = _override(sets, "hub.bind") or "0.0.0.0"
    ports = [(bind, _hub_port(sets))]
    cert = _override(sets, "hub.cert_port")
    ports.append((bind, int(cert) if cert and cert.isdigit() else 10002))
    health = _override(sets, "metrics_address") or "127.0.0.1:10550"
    h, _, p = health.rpartition(":")
    ports.append((h or "127.0.0.1", int(p) if p.isdigit() else 10550))
    return ports


def _finish(s: Settings, summary: dict[str, Any], mode: str) -> None:
    if s.output is not Format.table:
        render.data(summary, s.output)
        return
    if mode == "embedded":
        render.message("\nThe embedded control plane is running. Its admin kubeconfig:")
        print(summary["kubeconfig"], flush=True)
        render.message(f"  export KUBECONFIG={summary['kubeconfig']}")
    if "join" in summary:
        render.message(f"\nOn each edge machine run (token {summary['join']['id']} expires "
                       f"{summary['join']['expires']}):")  # fmt: skip
        print(summary["join"]["command"], flush=True)
    render.message(f"\nkedge cloud installed ({mode} mode).")
