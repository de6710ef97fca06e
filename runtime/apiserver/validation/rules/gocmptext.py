"""go-cmp's report text (report_text.go): nodes are a line, a wrap (prefix, node, suffix) or a list of
records; a list stays on one line unless a record is marked -/+, carries a comment or is itself multi-line,
or (when printing a removed/inserted value) passes 80 columns. Multi-line lists put a record per line,
indented with tabs after a 2-character diff marker, keys of adjacent single-line records aligned."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeAlias

_NBSP = "\u00a0"
_MAX_COLUMN = 80
ELLIPSIS = "..."


@dataclass
class Rec:
    value: Node
    key: str = ""
    diff: str = ""  # "", "-" or "+"
    comment: str = ""
    elide_comma: bool = False


@dataclass
class Wrap:
    prefix: str
    value: Node
    suffix: str = ""


Node: TypeAlias = str | Wrap | list[Rec]


def append_ellipsis(recs: list[Rec], comment: str = "") -> None:
    if recs and recs[-1].value == ELLIPSIS and not recs[-1].key:
        return
    recs.append(Rec(ELLIPSIS, comment=comment, elide_comma=bool(comment)))


def _mode(d: str, r: str) -> str:
    return r or d


def compact(node: Node, d: str) -> tuple[str, Node]:
    """The one-line text of `node` and what it becomes: a line if it fits on one."""
    if isinstance(node, str):
        return node, node
    if isinstance(node, Wrap):
        text, inner = compact(node.value, d)
        text = node.prefix + text + node.suffix
        return (text, text) if isinstance(inner, str) else (text, Wrap(node.prefix, inner, node.suffix))
    out: list[Rec] = []
    parts: list[str] = []
    multi = False
    for r in node:
        text, value = compact(r.value, _mode(d, r.diff))
        out.append(replace(r, value=value))
        parts.append((r.key + ": " if r.key else "") + text)
        multi = multi or bool(r.diff) or bool(r.comment) or not isinstance(value, str)
    line = ", ".join(parts)
    if d in "-+" and d and len(line) > _MAX_COLUMN:
        multi = True
    return line, (out if multi else line)


def _indent(n: int, d: str) -> str:
    return (d + _NBSP if d else _NBSP + _NBSP) + "\t" * n


def _key_pads(recs: list[Rec]) -> list[int]:
    pads = [0] * len(recs)
    group: list[int] = []

    def close() -> None:
        width = max((len(recs[j].key) for j in group), default=0)
        for j in group:
            pads[j] = width - len(recs[j].key)
        group.clear()

    for i, r in enumerate(recs):
        if not r.key or not isinstance(r.value, str):
            close()
        else:
            group.append(i)
    close()
    return pads


def expanded(node: Node, d: str, n: int) -> str:
    if isinstance(node, str):
        return node
    if isinstance(node, Wrap):
        return node.prefix + expanded(node.value, d, n) + node.suffix
    out = []
    for r, pad in zip(node, _key_pads(node), strict=True):
        dd = _mode(d, r.diff)
        line = "\n" + _indent(n + 1, dd) + (r.key + ": " if r.key else "") + " " * pad
        line += expanded(r.value, dd, n + 1) + ("" if r.elide_comma else ",")
        out.append(line + (" // " + r.comment if r.comment else ""))
    return "".join(out) + "\n" + _indent(n, d)


def render(node: Node) -> str:
    _, node = compact(node, "")
    return _indent(0, "") + expanded(node, "", 0) + "\n"
