"""Output: data to stdout (table, json or yaml), messages and progress to stderr (design.md §7)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from kubeedge_cli.options import Format
from runtime.errors import KedgeError, PartialFailure, PreflightFailed

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def data(
    obj: Any, fmt: Format, *, columns: Sequence[str] | None = None, rows: Sequence[Sequence[Any]] = ()
) -> None:
    """Print `obj` as JSON/YAML, or the given columns/rows as a plain table."""
    if fmt is Format.json:
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    elif fmt is Format.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))
    elif columns is not None:
        table(columns, rows)
    else:
        for key, value in obj.items() if isinstance(obj, dict) else enumerate(obj):
            sys.stdout.write(f"{key}: {value}\n")
    sys.stdout.flush()


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A kubectl-like table: upper-case headers, columns padded by three spaces."""
    cells = [[str(c).upper() for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for r in cells:
        sys.stdout.write("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


def message(text: str) -> None:
    err.print(text, markup=False)


def warn(text: str) -> None:
    err.print(f"warning: {text}", markup=False, style="yellow")


def with_root(text: str, root: str | None) -> str:
    """Name `--root X` in every `kedge …` command a hint quotes, when the user gave one (so the hint
    can be pasted as is)."""
    if not root or root == "/":
        return text
    return re.sub(
        r"`(kedge [^`]*?)`", lambda m: f"`{m[1]} --root {root}`" if "--root" not in m[1] else m[0], text
    )


def error(exc: BaseException, fmt: Format = Format.table, *, root: str | None = None) -> None:
    """Report an error on stderr: message and hint, or a JSON object when -o json (with the failed
    checks of a preflight and the errors of a partial failure)."""
    hint = with_root(exc.hint, root) if isinstance(exc, KedgeError) and exc.hint else None
    if fmt is Format.json:
        body: dict[str, Any] = {"error": str(exc), "type": type(exc).__name__, "hint": hint}
        if isinstance(exc, PreflightFailed):
            body["failed"] = exc.failed
            body["checks"] = exc.checks
        if isinstance(exc, PartialFailure):
            body["errors"] = exc.errors
        sys.stderr.write(json.dumps(body) + "\n")
        return
    err.print(f"error: {exc}", markup=False, style="red")
    if hint:
        err.print(f"  hint: {hint}", markup=False)


class Steps:
    """Numbered progress for long work: `[3/7] requesting certificate`, spinner only on a TTY."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        label = f"[{self.n}/{self.total}] {title}"
        if err.is_terminal:
            with err.status(label):
                yield
            err.print(f"{label} ... done", markup=False)
        else:
            err.print(label, markup=False)
            yield
