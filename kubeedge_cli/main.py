"""The kedge command tree: assembles one module per command and maps errors to exit codes."""

from __future__ import annotations

import sys

import typer

from kubeedge_cli import render
from kubeedge_cli.commands import apiserver, cloud, init, reset, token, version
from kubeedge_cli.errors import exit_code_for
from kubeedge_cli.options import Format, KubeconfigOpt, OutputOpt, RootOpt, Settings, VerboseOpt
from runtime.errors import KedgeError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # tokens and keys live in locals
    context_settings={"help_option_names": ["-h", "--help"]},
    help="kedge: Kubernetes extended to the edge (KubeEdge-compatible), in one executable.",
)


@app.callback()
def _globals(
    ctx: typer.Context,
    output: OutputOpt = None,
    kubeconfig: KubeconfigOpt = None,
    verbose: VerboseOpt = None,
    root: RootOpt = None,
) -> None:
    from pathlib import Path

    ctx.obj = Settings(
        output=output or Format.table, kubeconfig=kubeconfig, verbose=verbose or 0, root=root or Path("/")
    )


# Top-level commands (unnamed typers) and groups (named typers) are registered here, nowhere else.
for module in (version, apiserver):
    app.add_typer(module.app)
app.add_typer(cloud.app, name="cloud")
app.add_typer(init.app)
app.add_typer(reset.app)
app.add_typer(token.app, name="token")
from kubeedge_cli.commands import edge, join, status  # noqa: E402 - edge agent commands

app.add_typer(join.app)
app.add_typer(status.app)
app.add_typer(edge.app, name="edge")


def _output_format(argv: list[str]) -> Format:
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and i + 1 < len(argv):
            return Format.json if argv[i + 1] == "json" else Format.table
        if arg in ("-ojson", "--output=json"):
            return Format.json
    return Format.table


def main() -> None:
    """Console-script entry point."""
    try:
        app(standalone_mode=True)
    except KedgeError as exc:
        render.error(exc, _output_format(sys.argv[1:]))
        raise SystemExit(exit_code_for(exc)) from None
