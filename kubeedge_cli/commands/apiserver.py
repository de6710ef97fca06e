"""`kedge apiserver`: run the embedded Kubernetes API server in the foreground."""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command(
    help="Run a Kubernetes API server (embedded, sqlite-backed) until SIGTERM/SIGINT.\n\n"
    "Prints the admin kubeconfig path on stdout once it is ready."
)
def apiserver(
    ctx: typer.Context,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where objects, keys and admin.kubeconfig live.")
    ],
    port: Annotated[int, typer.Option("--port", help="HTTPS port (0: any free port).")] = 6443,
    bind: Annotated[str, typer.Option("--bind", help="Address to listen on.")] = "127.0.0.1",
    in_memory: Annotated[
        bool, typer.Option("--in-memory", help="Keep objects in memory only (tests).")
    ] = False,
    kubeconfig_out: Annotated[
        Path | None, typer.Option("--kubeconfig-out", help="Also write the admin kubeconfig here.")
    ] = None,
    fsync: Annotated[bool, typer.Option("--fsync", help="fsync every commit (survives power loss).")] = False,
    watch_history: Annotated[int, typer.Option("--watch-history", hidden=True)] = 10_000,
    controllers: Annotated[
        bool,
        typer.Option(
            "--controllers/--no-controllers",
            help="Run the embedded control plane (scheduler, GC, namespaces, node lifecycle, Deployments).",
        ),
    ] = True,
    node_grace: Annotated[
        float,
        typer.Option(
            "--node-monitor-grace-period",
            help="Seconds without a Lease renewal before a node turns Unknown (kube-controller-manager: 40).",
        ),
    ] = 40.0,
    event_ttl: Annotated[
        float,
        typer.Option(
            "--event-ttl", help="Seconds an Event is kept after its last write (kube-apiserver: 1h)."
        ),
    ] = 3600.0,
    usage_socket: Annotated[
        Path | None,
        typer.Option(
            "--usage-socket",
            help="The cloud's status socket: serve metrics.k8s.io (kubectl top) from the usage edges report.",
        ),
    ] = None,
) -> None:
    import asyncio  # not before a command is known (issue 14: import diet)

    from kubeedge_cli.options import settings
    from runtime import eventloop, logs

    logs.setup(logging.INFO, settings(ctx).verbose)
    from runtime.apiserver.server import serve

    async def main() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(
            serve(
                data_dir,
                host=bind,
                port=port,
                in_memory=in_memory,
                kubeconfig_out=kubeconfig_out,
                ready=ready,
                fsync=fsync,
                watch_history=watch_history,
                controllers=controllers,
                controller_options={"node_grace": node_grace},
                event_ttl=event_ttl,
                usage_socket=usage_socket,
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            print(kubeconfig_out or data_dir / "admin.kubeconfig", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        waiter.cancel()

    eventloop.run(main(), loop="uvloop")
