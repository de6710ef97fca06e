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


@app.command("run")
@global_options("kubeconfig", "root", "verbose")
def run(
    s: Settings,
    config: Annotated[
        Path | None, typer.Option("--config", help="cloud.toml (default <root>/etc/kedge/cloud.toml).")
    ] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=c.")] = None,
) -> None:
    """Run the cloud: certificate bootstrap (:10002), CloudHub (:10000), controllers, health endpoints.

    Serves /healthz, /readyz and /metrics on metrics_address; stops gracefully on SIGTERM or SIGINT.
    """
    from runtime import eventloop

    eventloop.run(_main(config, s.root, s.kubeconfig, sets or [], s.verbose))
