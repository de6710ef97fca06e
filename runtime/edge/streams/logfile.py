"""`kubectl logs -f` read from the container's json-file log itself, as CRI kubelet reads its logs.

Why: for a follow the engine decodes every JSON line of its log file and writes it back as a flushed
frame of its own; at 5 MB/s of 100-byte lines that cost dockerd ~0.2 of a core (docs/benchmarks.md),
taken from the pod starts it serves at the same time. Reading the same lines here, a block at a time
and decoded with one ``json.loads`` per block, costs a fraction of it.

When (``usable``): the container logs with json-file and its ``LogPath`` is readable by this process
(the engine on this host and the edge as root); otherwise logs.py asks the engine, as for a log read
without ``follow``. The options keep the engine's meaning: ``tail`` the last N entries of the files
(the rotated ones first), ``since`` the entries at or after that time (after ``tail``, as json-file
does), ``timestamps`` each entry's time in RFC 3339 with nine fraction digits and a space, stdout and
stderr merged; ``limitBytes`` is cut in logs.py. The follow reads to the end of the file, then looks
every ``POLL`` seconds for more; when the engine rotates (the file renamed to ``.1``, a new one made)
the old file is read to its end and the new one from its start; it ends once the container's process
is gone and the file has stayed as it is for ``GRACE`` seconds, or when the session stops it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

BLOCK = 256 << 10
POLL = 0.05  # seconds between looks at a log file that has no more
GRACE = 0.5  # seconds the file must stay as it is after the container's process is gone


def usable(info: dict[str, Any]) -> bool:
    """json-file, its file readable here, and its process (when it runs) seen in this /proc."""
    path = info.get("LogPath") or ""
    kind = ((info.get("HostConfig") or {}).get("LogConfig") or {}).get("Type")
    pid = int((info.get("State") or {}).get("Pid") or 0)
    seen = not pid or os.path.exists(f"/proc/{pid}")
    return kind == "json-file" and bool(path) and os.access(path, os.R_OK) and seen


def files(info: dict[str, Any]) -> int:
    """How many files the engine keeps (json-file ``max-file``)."""
    opts = ((info.get("HostConfig") or {}).get("LogConfig") or {}).get("Config") or {}
    return int(opts.get("max-file") or 1)


def _stamp(time: str) -> str:
    """Go's RFC3339Nano (trailing zeros cut) → nine fraction digits, as the engine's ``timestamps``."""
    base, _, frac = time.rstrip("Z").partition(".")
    return f"{base}.{frac:0<9}Z"


def since_stamp(since: float) -> str:
    whole = int(since)
    base = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{round((since - whole) * 1e9):09d}Z"


class Entries:
    """Complete JSON lines of a json-file log → the bytes a client gets, a block at a time."""

    def __init__(self, timestamps: bool, since: str | None) -> None:
        self.timestamps, self.since = timestamps, since

    def parse(self, lines: list[bytes]) -> list[dict[str, Any]]:
        try:
            return list(json.loads(b"[" + b",".join(lines) + b"]"))
        except ValueError:  # one torn line: keep the others
            out = []
            for line in lines:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
            return out

    def render(self, entries: list[dict[str, Any]]) -> bytes:
        if self.since is not None:
            since = self.since
            entries = [e for e in entries if _stamp(e.get("time", "")) >= since]
        if self.timestamps:
            return "".join(f"{_stamp(e.get('time', ''))} {e.get('log', '')}" for e in entries).encode()
        return "".join([e.get("log", "") for e in entries]).encode()


def _lines(data: bytes) -> tuple[list[bytes], bytes]:
    lines = data.split(b"\n")
    return [line for line in lines[:-1] if line], lines[-1]


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _history(path: str, files: int, current: int, tail: int | None, entries: Entries) -> bytes:
    """What the rotated files and the current one (open as ``current``, read to its end) hold."""
    lines: list[bytes] = []
    seen = {os.fstat(current).st_ino}
    for i in range(files - 1, 0, -1):
        rotated = f"{path}.{i}"
        ino = _inode(rotated)
        if ino is None or ino in seen or tail == 0:
            continue
        seen.add(ino)
        with open(rotated, "rb") as f:
            lines += _lines(f.read())[0]
    rest = b""
    while block := os.read(current, BLOCK):
        got, rest = _lines(rest + block)
        if tail != 0:
            lines += got
    if rest:  # a line being written: back up to its start, the follow reads it whole
        os.lseek(current, -len(rest), os.SEEK_CUR)
    if tail is not None:
        lines = lines[-tail:] if tail else []
    return entries.render(entries.parse(lines))


def follow(info: dict[str, Any], *, tail: int | None, since: float | None, timestamps: bool,
           stop: threading.Event) -> Iterator[bytes]:  # fmt: skip
    """The log's history (``tail``, ``since``) then its new entries until the container's process is
    gone (``info`` is the container's inspect) or ``stop`` is set."""
    path = info["LogPath"]
    pid = int((info.get("State") or {}).get("Pid") or 0)
    entries = Entries(timestamps, since_stamp(since) if since is not None else None)
    fd = os.open(path, os.O_RDONLY)
    try:
        if out := _history(path, files(info), fd, tail, entries):
            yield out
        rest, quiet = b"", 0
        while not stop.is_set():
            block = os.read(fd, BLOCK)
            if block:
                quiet = 0
                lines, rest = _lines(rest + block)
                if lines and (out := entries.render(entries.parse(lines))):
                    yield out
                continue
            ino = _inode(path)
            if ino is not None and ino != os.fstat(fd).st_ino:  # rotated: this one is read out
                os.close(fd)
                fd, rest = os.open(path, os.O_RDONLY), b""
                continue
            if not pid or not os.path.exists(f"/proc/{pid}"):
                quiet += 1  # the process is gone: the engine may still be writing its last lines
                if quiet > GRACE / POLL:
                    return
            stop.wait(POLL)
    finally:
        os.close(fd)
