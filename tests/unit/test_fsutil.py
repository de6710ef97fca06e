"""Pid files: a recorded pid counts as running only while a live process has it (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runtime.fsutil import live_pid, pid_alive
from tests.fixtures.wait import eventually


def zombie() -> subprocess.Popen[bytes]:
    """A child that has exited and is not reaped yet: what a runtime killed after its parent looks like
    until init reaps it."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])

    def exited() -> bool:
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"

    eventually(exited, 10, "the child to exit")
    return proc


def test_a_zombie_is_not_running_and_does_not_hold_its_pid_file(tmp_path: Path) -> None:
    proc = zombie()
    try:
        os.kill(proc.pid, 0)  # the kernel still has the pid ...
        assert not pid_alive(proc.pid)  # ... but nothing runs
        (tmp_path / "edge.pid").write_text(f"{proc.pid}\n")
        assert live_pid(tmp_path / "edge.pid") is None
    finally:
        proc.wait()


def test_a_running_process_holds_its_pid_file(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "edge.pid").write_text(f"{proc.pid}\n")
        assert pid_alive(proc.pid) and live_pid(tmp_path / "edge.pid") == proc.pid
    finally:
        proc.kill()
        proc.wait()
    assert not pid_alive(proc.pid) and live_pid(tmp_path / "edge.pid") is None
