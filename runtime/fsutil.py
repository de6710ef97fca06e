"""Atomic, permission-correct file writes for keys, tokens, certificates and configs (design.md §3)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write temp file in the same directory, fsync, chmod, rename: readers see old or new, never half.
    A folder created here for a private file (no group/other bits) is private too: 0700."""
    fresh = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh and not mode & 0o077:
        os.chmod(path.parent, 0o700)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def make_private(*dirs: Path) -> list[Path]:
    """Folders holding keys or secrets made 0700 where they exist with group/other bits (pre-created
    0755 by an installer, or made as a parent by an earlier step); returns the ones tightened."""
    tightened = []
    for d in dirs:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(d).st_mode & 0o077:
                os.chmod(d, 0o700)
                tightened.append(d)
    return tightened


def read_pid(path: Path) -> int | None:
    """The pid recorded in a pid file, or None when the file is missing, empty or not a pid."""
    try:
        first = path.read_text().split()
        return int(first[0]) if first else None
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (it may belong to another user). A zombie counts as gone: a process killed
    after its parent died (the one-file binary's runtime, killed with its bootloader) waits for init to
    reap it, and its pid file must not block the next start meanwhile."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):  # no procfs (or the process just went): trust kill(0)
        return True


def live_pid(path: Path) -> int | None:
    """The recorded pid if that process runs, else None."""
    pid = read_pid(path)
    return pid if pid is not None and pid_alive(pid) else None


def missing(*paths: Path) -> list[Path]:
    """The given paths and their ancestors that do not exist yet, deepest first: what a command is
    about to create, so that a failure can remove exactly that (`remove_created`)."""
    out = {d for p in paths for d in (p, *p.parents) if not d.exists()}
    return sorted(out, key=lambda d: len(d.parts), reverse=True)


def remove_created(created: list[Path], *, only_empty: bool = False) -> None:
    """Remove what `missing()` listed (deepest first). Directories only when empty if `only_empty`."""
    import shutil

    for p in created:
        if p.is_dir() and not p.is_symlink():
            if only_empty:
                with contextlib.suppress(OSError):
                    p.rmdir()
            else:
                shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
