"""Start this same kedge again as a detached process: the one way every role does it (issue 14).

`kedge init` leaves `kedge apiserver` and `kedge cloud run` running, `kedge join` leaves `kedge edge
run`; each must outlive the command that started it, whether kedge runs from the source tree, from the
one-folder build, or from the one-file `kedge` (scripts/launcher.sh, which unpacks the one-folder build
once per version and execs it with KEDGE_EXE naming the file the user ran).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def kedge_argv() -> list[str]:
    """How to run this same kedge: the one-file launcher the user ran (so a systemd unit or a child keeps
    working after an upgrade replaces the unpacked version), the frozen executable, or the package."""
    if getattr(sys, "frozen", False):
        launcher = os.environ.get("KEDGE_EXE", "")
        if launcher and os.path.isfile(launcher) and os.access(launcher, os.X_OK):
            return [launcher]
        return [sys.executable]
    return [sys.executable, "-m", "kubeedge_cli"]


def spawn_detached(
    args: Sequence[str], log_file: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `kedge <args>` in its own session (the terminal's signals and the starter's exit do not
    reach it), stdin from /dev/null, stdout and stderr appended to `log_file`.

    PYINSTALLER_RESET_ENVIRONMENT: a frozen kedge that starts a frozen kedge must make the child a fresh
    start of the executable; without it a one-file child takes itself for the bootloader's own child
    and runs from the starter's unpack folder, which is deleted when the starter exits."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {}), "PYINSTALLER_RESET_ENVIRONMENT": "1"}
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [*kedge_argv(), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=child_env,
            close_fds=True,
        )
