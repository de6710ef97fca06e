"""Host mode under systemd: `kedge cloud run` as the unit kedge-cloud.service (issue 6).

Used only when systemd is PID 1 and the root is `/` (a unit under a test root would be a unit of
the real machine). Elsewhere host mode runs a detached process (runtime.cloud.install.procs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from runtime.errors import KedgeError
from runtime.procs import kedge_argv

UNIT_NAME = "kedge-cloud.service"
UNIT_PATH = Path("/etc/systemd/system") / UNIT_NAME


def available(root: Path) -> bool:
    return (
        root.resolve() == Path("/")
        and Path("/run/systemd/system").is_dir()
        and shutil.which("systemctl") is not None
        and os.geteuid() == 0
    )


def unit_text(kubeconfig: Path | None, argv: list[str] | None = None) -> str:
    """The unit: restart always, file limit raised (one socket per edge), SIGTERM for a clean stop."""
    cmd = [*(argv or kedge_argv()), "cloud", "run", "--root", "/"]
    if kubeconfig is not None:
        cmd += ["--kubeconfig", str(kubeconfig)]
    return "\n".join([
        "[Unit]",
        "Description=kedge cloud (KubeEdge-compatible CloudHub and certificate bootstrap)",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "ExecStart=" + " ".join(cmd),
        "Restart=always",
        "RestartSec=5",
        "LimitNOFILE=1048576",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=30",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])  # fmt: skip


def _systemctl(*args: str) -> str:
    proc = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise KedgeError(f"systemctl {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}",
                         hint=f"journalctl -u {UNIT_NAME}")  # fmt: skip
    return proc.stdout.strip()


def install(kubeconfig: Path | None) -> int:
    """Write, enable and (re)start the unit; returns the main pid."""
    UNIT_PATH.write_text(unit_text(kubeconfig))
    _systemctl("daemon-reload")
    _systemctl("enable", UNIT_NAME)
    _systemctl("restart", UNIT_NAME)
    return main_pid()


def main_pid() -> int:
    try:
        return int(_systemctl("show", "-p", "MainPID", "--value", UNIT_NAME) or 0)
    except (KedgeError, ValueError):
        return 0


def installed() -> bool:
    return UNIT_PATH.exists()


def remove() -> bool:
    """Stop, disable and delete the unit; False when there was none."""
    if not UNIT_PATH.exists():
        return False
    subprocess.run(["systemctl", "disable", "--now", UNIT_NAME], capture_output=True, timeout=60)
    UNIT_PATH.unlink(missing_ok=True)
    subprocess.run(["systemctl", "daemon-reload"], capture_output=True, timeout=60)
    return True
