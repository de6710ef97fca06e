"""`kedge cloud run`: run the cloud role in the foreground (the Deployment's command, or host mode)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from kubeedge_cli.options import Settings, global_options

app = typer.Typer(no_args_is_help=True, help="Cloud role commands.")


async def _main(
    cfg_path: Path | None, root: Path, kubeconfig: Path | None, sets: list[str], verbose: int
) -> None:
    from runtime import logs
    from runtime.cloud import cloudcore
    from runtime.config import load_cloud

    cfg = load_cloud(cfg_path, root, sets)
    logs.setup(cfg.log_level, verbose)
    import asyncio  # not before a command is known (issue 14: import diet)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with cloudcore.foreground(root):
        await cloudcore.run(cfg, stop, root=root, kubeconfig=kubeconfig)


@app.command(
    "run",
    help="Run the cloud: certificate bootstrap (:10002), CloudHub (:10000), controllers, health "
    "endpoints.\n\nServes /healthz, /readyz and /metrics on metrics_address; stops gracefully on "
    "SIGTERM or SIGINT.",
)
@global_options("kubeconfig", "root", "verbose")
def run(
    s: Settings,
    config: Annotated[
        Path | None, typer.Option("--config", help="cloud.toml (default <root>/etc/kedge/cloud.toml).")
    ] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=c.")] = None,
) -> None:
    from runtime import eventloop

    eventloop.run(_main(config, s.root, s.kubeconfig, sets or [], s.verbose), loop="uvloop")


async def _dnat(
    kubeconfig: Path | None, namespace: str, iptables: list[str], stream_port: int, every: float, verbose: int
) -> None:
    import asyncio

    from runtime import logs
    from runtime.cloud.tunnel.dnat import DnatManager, run_dnat
    from runtime.kube.client import make_client

    logs.setup("info", verbose)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with make_client(kubeconfig) as client:
        await run_dnat(client, namespace, DnatManager(iptables), stop, stream_port=stream_port, every=every)


@app.command(
    "tunnel-dnat",
    help=(
        "Keep the nat rules that send each cloud replica's tunnel port to its stream endpoint.\n\nRuns "
        "on the hosts where kube-apiserver runs (the DaemonSet `kedge init --stream-tunnel dnat` "
        "installs): reads the ConfigMap `tunnelport`, reconciles the chain KEDGE-TUNNEL-PORT (nat OUTPUT "
        "and PREROUTING) every --every seconds, removes it on SIGTERM. docs/streams.md."
    ),
)
@global_options("kubeconfig", "verbose")
def tunnel_dnat(
    s: Settings,
    namespace: Annotated[str, typer.Option("--namespace", help="The cloud's namespace.")] = "kubeedge",
    iptables: Annotated[
        str, typer.Option("--iptables", help="The iptables command, e.g. 'chroot /host iptables'.")
    ] = "iptables",
    stream_port: Annotated[
        int, typer.Option("--stream-port", help="Stream port for claims that record none (KubeEdge's).")
    ] = 0,
    every: Annotated[float, typer.Option("--every", help="Seconds between reconciles.")] = 10.0,
) -> None:
    import shlex

    from runtime import eventloop

    eventloop.run(
        _dnat(s.kubeconfig, namespace, shlex.split(iptables), stream_port, every, s.verbose), loop="uvloop"
    )
