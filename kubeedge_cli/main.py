"""The kedge command tree: assembles one module per command and maps errors to exit codes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

# typer vendors click (typer._click); its usage errors are rendered here in kedge's own form
from typer._click import exceptions as click

from kubeedge_cli import render
from kubeedge_cli.commands import apiserver, cloud, init, reset, token, version
from kubeedge_cli.errors import ERROR, OK, exit_code_for
from kubeedge_cli.options import Format, KubeconfigOpt, OutputOpt, RootOpt, Settings, VerboseOpt
from runtime import logs
from runtime.errors import KedgeError, UsageError

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,  # plain click help: whole texts, flags without a <bool> type column
    pretty_exceptions_show_locals=False,  # tokens and keys live in locals
    context_settings={"help_option_names": ["-h", "--help"]},
    help="kedge: Kubernetes extended to the edge (KubeEdge-compatible), in one executable.",
)


def _version(value: bool) -> None:
    if value:
        from runtime import __version__

        print(f"kedge {__version__}", flush=True)
        raise typer.Exit()


@app.callback()
def _globals(
    ctx: typer.Context,
    output: OutputOpt = None,
    kubeconfig: KubeconfigOpt = None,
    verbose: VerboseOpt = None,
    root: RootOpt = None,
    _show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the kedge version and exit."),
    ] = False,
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
from kubeedge_cli.commands import edge, join, kubectl, status  # noqa: E402 - edge agent commands

app.add_typer(join.app)
app.add_typer(status.app)
app.add_typer(edge.app, name="edge")
app.add_typer(kubectl.app)


def _output_format(argv: list[str]) -> Format:
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and i + 1 < len(argv):
            return Format.json if argv[i + 1] == "json" else Format.table
        if arg in ("-ojson", "--output=json"):
            return Format.json
    return Format.table


def _root_of(argv: list[str]) -> str | None:
    """--root as given (for hints); None when not given."""
    for i, arg in enumerate(argv):
        if arg == "--root" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--root="):
            return arg.partition("=")[2]
    return None


def _usage_error(exc: click.UsageError) -> KedgeError:
    """click's usage errors in kedge's form: one `error:` line and a hint; suggestions only when close."""
    import difflib

    text = exc.format_message()
    if isinstance(exc, click.NoSuchOption):
        close = difflib.get_close_matches(exc.option_name, exc.possibilities or [], n=3, cutoff=0.75)
        text = f"no such option: {exc.option_name}" + (
            f" (did you mean {' or '.join(close)}?)" if close else ""
        )
    command = (
        exc.ctx.command_path.replace(exc.ctx.find_root().info_name or "kedge", "kedge", 1) if exc.ctx else ""
    )
    return UsageError(text, hint=f"`{command or 'kedge'} --help` lists what it accepts")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every error ends as `error:` + `hint:` (or JSON) and an exit code."""
    args = logs.normalize(sys.argv[1:] if argv is None else argv)
    fmt, root = _output_format(args), _root_of(args)
    try:
        rv = app(args=args, prog_name="kedge", standalone_mode=False)
    except KedgeError as exc:
        render.error(exc, fmt, root=root)
        raise SystemExit(exit_code_for(exc)) from None
    except click.UsageError as exc:
        usage = _usage_error(exc)
        render.error(usage, fmt, root=root)
        raise SystemExit(exit_code_for(usage)) from None
    except click.ClickException as exc:
        render.error(KedgeError(exc.format_message()), fmt, root=root)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        render.message("aborted")
        raise SystemExit(ERROR) from None
    raise SystemExit(rv if isinstance(rv, int) else OK)
