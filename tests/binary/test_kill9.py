"""The executable runs kedge in the process the user (or a supervisor) started: the launcher execs the
unpacked one-folder build, no bootloader parent sits between. So the pid file names that process, and
`kill -9` of it stops kedge, as it does when run from source."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from tests.edge.test_status import closed_port
from tests.fixtures.e2e import alive
from tests.fixtures.edge import make_edge_root
from tests.fixtures.procs import Spawner, executable
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually


def test_the_started_process_is_the_runtime_and_kill9_stops_it(
    tls_certs: TLSCerts, tmp_path: Path, spawn: Spawner
) -> None:
    exe = executable()
    cfg = make_edge_root(tmp_path, tls_certs, "bin-1", f"127.0.0.1:{closed_port()}")
    proc, log = spawn([str(exe), "edge", "run", "--root", str(tmp_path), "--no-pods"], "edge")
    eventually(lambda: Path(cfg.status.socket).exists(), 30, proc=proc, log=log, what="status socket")
    pid = int((tmp_path / "run" / "kedge" / "edge.pid").read_text())
    assert pid == proc.pid, "the runtime is not the process that was started (a bootloader in between?)"
    exe_link = os.readlink(f"/proc/{pid}/exe")
    assert re.search(r"/[0-9a-f]{20}/kedge$", exe_link), f"runs {exe_link}, not an unpacked version"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    eventually(lambda: not alive(pid), 10, log=log, what=f"the runtime (pid {pid}) to die")
