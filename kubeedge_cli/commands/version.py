"""`kedge version`: kedge, protocol, Python and platform versions."""

from __future__ import annotations

import platform
import sys

import typer

from kubeedge_cli import render
from kubeedge_cli.options import Format, OutputOpt, settings
from runtime import PROTOCOL_VERSION, __version__

app = typer.Typer()


def version_info() -> dict[str, str]:
    return {
        "kedgeVersion": __version__,
        "protocolVersion": PROTOCOL_VERSION,
        "kubeletVersion": f"v1.32.0-kedge.{__version__}",
        "python": platform.python_version(),
        "platform": f"{sys.platform}/{platform.machine()}",
    }


@app.command(help="Print the kedge version, the wire protocol version, Python and platform.")
def version(ctx: typer.Context, output: OutputOpt = None) -> None:
    fmt = settings(ctx, output=output).output
    info = version_info()
    if fmt is Format.table:
        render.table(["field", "value"], list(info.items()))
    else:
        render.data(info, fmt)
