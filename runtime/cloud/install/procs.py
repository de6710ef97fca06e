"""Detached local processes for host and embedded mode: start, find, wait ready, stop (issue 6).

`kedge init --host/--embedded` leaves `kedge cloud run` (and `kedge apiserver`) running in the
background after it returns: own session (so the terminal's signals do not reach them), stdout and
stderr to <root>/var/log/kedge/<role>.log, pid in <root>/run/kedge/<role>.pid. A pid file is only
trusted when that pid is alive AND is a kedge process (pids are reused), so a stale file after a
reboot never makes reset kill a stranger.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.errors import KedgeError
from runtime.fsutil import live_pid, missing, pid_alive, remove_created, write_atomic
from runtime.paths import Paths, Role
from runtime.procs import spawn_detached


def _is_kedge(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kedge" in cmdline or b"kubeedge_cli" in cmdline


def running_pid(root: Path, role: Role) -> int | None:
    """The pid recorded for `role` under `root`, if that process is alive and is kedge."""
    pid = live_pid(Paths.of(root, role).pid_file)
    return pid if pid is not None and _is_kedge(pid) else None


def start_detached(root: Path, role: Role, args: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Start `kedge <args>` in its own session, log to the role's log file, record its pid."""
    paths = Paths.of(root, role)
    proc = spawn_detached(args, paths.log_file, env)
    write_atomic(paths.pid_file, f"{proc.pid}\n", mode=0o644)
    return proc.pid


def log_tail(root: Path, role: Role, lines: int = 15) -> str:
    try:
        text = Paths.of(root, role).log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap if it is our child
        if done == pid:
            return False
    except ChildProcessError:
        pass
    return pid_alive(pid)


def exit_error(root: Path, role: Role, pid: int) -> KedgeError:
    """What a detached kedge that exited said: its own `error:` and `hint:` lines when it printed them
    (one line each, as every kedge command does), else the tail of its log."""
    lines = log_tail(root, role, 40).splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    if not errors:
        return KedgeError(f"kedge {role} (pid {pid}) exited; log:\n{log_tail(root, role)}",
                          hint=f"see {Paths.of(root, role).log_file}")  # fmt: skip
    i = errors[-1]
    hint = lines[i + 1].strip().removeprefix("hint: ") if i + 1 < len(lines) else ""
    return KedgeError(f"kedge {role} exited: {lines[i].removeprefix('error: ')}", hint=hint or None)


def wait_file(path: Path, pid: int, root: Path, role: Role, timeout: float) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            return path
        if not _alive(pid):
            raise exit_error(root, role, pid)
        time.sleep(0.1)
    raise KedgeError(f"timed out after {timeout:.0f}s waiting for {role} to write {path}",
                     hint=f"see {Paths.of(root, role).log_file}")  # fmt: skip


def cloud_addresses(root: Path) -> dict[str, str]:
    """What the local cloud bound ({"health": "h:p", "bootstrap": "h:p", "hub": "h:p" …})."""
    try:
        data = json.loads((Paths.of(root, "cloud").state / "addresses.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def cloud_health_url(root: Path) -> str | None:
    """http://host:port of the local cloud's health server, from the addresses file it writes."""
    data = cloud_addresses(root)
    host, _, port = str(data.get("health", "")).rpartition(":")
    if not port:
        return None
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def wait_cloud_ready(root: Path, pid: int, timeout: float) -> str:
    """Wait until the local cloud answers /readyz with 200; returns its health URL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = cloud_health_url(root)
        if url and http_ok(url + "/readyz"):
            return url
        if not _alive(pid):
            raise exit_error(root, "cloud", pid)
        time.sleep(0.1)
    raise KedgeError(f"timed out after {timeout:.0f}s waiting for the local cloud's /readyz",
                     hint=f"see {Paths.of(root, 'cloud').log_file}")  # fmt: skip


def stop_process(root: Path, role: Role, timeout: float = 10.0) -> int | None:
    """SIGTERM the role's process group, SIGKILL after `timeout`; remove the pid file. Returns the pid."""
    pid = running_pid(root, role)
    pid_file = Paths.of(root, role).pid_file
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return pid


@contextlib.contextmanager
def exclusive(root: Path, what: str) -> Iterator[None]:
    """One init/reset of the cloud role per root at a time (flock: released when the holder dies,
    so a crash never leaves a stale lock). The file records the holder's pid for the message, and is
    removed (with the directories it needed) when the holder is done: nothing is left behind."""
    path = Paths.of(root, "cloud").pid_file.with_name("cloud-admin.lock")
    made = missing(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise KedgeError(
                f"another kedge init/reset (pid {holder}) is working under {root}",
                hint="wait for it to finish; the lock is released when it exits",
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break  # else the previous holder removed the file we opened: open the new one
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still holding it, so no one locks a removed file
        os.close(fd)  # closing drops the flock
        remove_created(made, only_empty=True)  # the directories this call made, once empty
