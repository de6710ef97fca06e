"""Global options (design.md §7), declared once and accepted both before and after the command.

`kedge -o json version` and `kedge version -o json` mean the same: a command names the global options
it takes with `@global_options(...)` and receives `s`, the Settings merged from both places (a command
with one or two of them may declare them itself and call `settings(ctx, ...)`, the same merge).
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from runtime.errors import UsageError


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


_GLOBAL: dict[str, Any] = {
    "output": OutputOpt,
    "kubeconfig": KubeconfigOpt,
    "verbose": VerboseOpt,
    "root": RootOpt,
}
R = TypeVar("R")


def global_options(*names: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Give a command the global options `names` (after its own, in this order) and call it with `s`,
    the Settings merged by `settings()`; so the options and their merge are written once, not per command.

    A command that must know what was given to it alone (not before it) declares that option itself,
    under the same name: it is still listed in this order, passed through, and merged into `s`.
    """

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        own = dict(inspect.signature(command, eval_str=True).parameters)
        del own["s"]
        declared = {n: own.pop(n) for n in names if n in own}
        tail = [
            declared.get(n) or inspect.Parameter(n, _KW, default=None, annotation=_GLOBAL[n]) for n in names
        ]
        ctx = inspect.Parameter("ctx", _KW, annotation=typer.Context)

        @functools.wraps(command)
        def run(ctx: typer.Context, **kwargs: Any) -> R:
            given = {n: kwargs[n] if n in declared else kwargs.pop(n) for n in names}
            return command(s=settings(ctx, **given), **kwargs)

        run.__signature__ = inspect.Signature([ctx, *own.values(), *tail])  # type: ignore[attr-defined]
        return run

    return decorate


_KW = inspect.Parameter.POSITIONAL_OR_KEYWORD

_DUR = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")


def parse_duration(text: str) -> float:
    """`24h`, `90m`, `1h30m`, `2d`, `45s` → seconds."""
    s = text.strip().lower()
    parts = _DUR.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise UsageError(f"--ttl {text}: expected a duration like 24h, 90m, 1h30m or 2d")
    seconds = sum(float(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"--ttl {text}: must be positive")
    return seconds
