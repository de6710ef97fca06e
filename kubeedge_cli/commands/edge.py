"""`kedge edge …`: the edge role's own commands.

`kedge edge run` has one parser, argparse in runtime/edge/launcher.py: kubeedge_cli/entry.py hands the
command to it before typer loads (the edge process stays small, design.md §3). This typer command
only lists `run` under `kedge edge` and forwards what reaches the typer app (`--help`, callers of
kubeedge_cli.main) to the same parser, with the global options given before `edge`.
"""

from __future__ import annotations

import typer

from kubeedge_cli.options import settings

app = typer.Typer(help="Edge role commands.")


@app.command(
    "run",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
    help="Run the edge runtime (cloud link, cache, node status, pods) in this process until SIGTERM.",
)
def run(ctx: typer.Context) -> None:
    from runtime.edge.launcher import main

    s = settings(ctx)
    raise typer.Exit(main(["edge", "run", "--root", str(s.root), *["-v"] * s.verbose, *ctx.args]))
