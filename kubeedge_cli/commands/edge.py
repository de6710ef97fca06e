"""`kedge edge …`: the edge role's own commands.

`kedge edge run` is normally dispatched by kubeedge_cli/entry.py before typer loads (small RSS); this
typer command exists for `--help` and for callers that go through the CLI app, and hands over to the
same launcher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kubeedge_cli.options import RootOpt, settings

app = typer.Typer(help="Edge role commands.")


@app.command("run")
def run(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help="Edge config (default <root>/etc/kedge/edge.toml).")] = (
        None
    ),
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=c")] = None,
    foreground: Annotated[
        bool,
        typer.Option(
            "--foreground",
            help="Accepted for scripts: `kedge edge run` always runs in the foreground, attached to this "
            "terminal (`kedge join` starts it in the background).",
        ),
    ] = False,
    no_pods: Annotated[bool, typer.Option("--no-pods", help="Do not host the pod manager.")] = False,
    mqtt: Annotated[
        str | None, typer.Option(help="Device plane broker: embedded | external=URL | off (default: config).")
    ] = None,
    root: RootOpt = None,
) -> None:
    """Run the edge runtime (cloud link, cache, node status, pods) in this process until SIGTERM."""
    from runtime.edge.launcher import main

    s = settings(ctx, root=root)
    argv = ["edge", "run", "--root", str(s.root), *["-v"] * s.verbose]
    if config is not None:
        argv += ["--config", str(config)]
    for item in sets or []:
        argv += ["--set", item]
    if foreground:
        argv.append("--foreground")
    if no_pods:
        argv.append("--no-pods")
    if mqtt is not None:
        argv += ["--mqtt", mqtt]
    raise typer.Exit(main(argv))
