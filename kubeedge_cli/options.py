"""Global options (design.md §7), declared once and accepted both before and after the command.

`kedge -o json version` and `kedge version -o json` mean the same: every command takes the shared
option types below with a default of None and resolves them with `settings(ctx, ...)`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer


class Format(str, enum.Enum):  # noqa: UP042 - StrEnum would change str(Format.json)
    table = "table"
    json = "json"
    yaml = "yaml"


OutputOpt = Annotated[
    Format | None, typer.Option("--output", "-o", help="Output format: table, json or yaml.")
]
KubeconfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--kubeconfig",
        help="Kubeconfig file (else $KUBECONFIG, ~/.kube/config, in-cluster; the one used is reported).",
    ),
]
VerboseOpt = Annotated[int | None, typer.Option("--verbose", "-v", count=True, help="More log detail.")]
RootOpt = Annotated[
    Path | None,
    typer.Option("--root", envvar="KEDGE_ROOT", help="Root every kedge path derives from (default /)."),
]


@dataclass(frozen=True)
class Settings:
    output: Format = Format.table
    kubeconfig: Path | None = None
    verbose: int = 0
    root: Path = Path("/")


def settings(
    ctx: typer.Context,
    *,
    output: Format | None = None,
    kubeconfig: Path | None = None,
    verbose: int | None = None,
    root: Path | None = None,
) -> Settings:
    """Merge the command's own options over the ones given before the command."""
    base = ctx.find_root().obj if isinstance(ctx.find_root().obj, Settings) else Settings()
    return replace(
        base,
        output=output or base.output,
        kubeconfig=kubeconfig or base.kubeconfig,
        verbose=verbose or base.verbose,
        root=root or base.root,
    )
