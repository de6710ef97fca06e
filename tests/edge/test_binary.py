"""The one-file binary (scripts/build.sh, then KEDGE_BIN=dist/kedge): Python runs in a child of
PyInstaller's bootloader, which forwards signals but cannot forward SIGKILL. `kill -9` of the kedge
a user (or a supervisor) started must still stop kedge, not leave the child running."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.edge.test_status import closed_port
from tests.fixtures.e2e import alive
from tests.fixtures.edge import make_edge_root
from tests.fixtures.procs import KEDGE, Spawner, runs_in, wait_for
from tests.fixtures.tlscerts import TLSCerts

pytestmark = pytest.mark.skipif(
    not os.environ.get("KEDGE_BIN"), reason="needs the one-file binary: KEDGE_BIN=dist/kedge"
)


def test_kill9_of_the_binary_stops_its_python_child(
    tls_certs: TLSCerts, tmp_path: Path, spawn: Spawner
) -> None:
    cfg = make_edge_root(tmp_path, tls_certs, "bin-1", f"127.0.0.1:{closed_port()}")
    proc, log = spawn([*KEDGE, "edge", "run", "--root", str(tmp_path), "--no-pods"], "edge")
    wait_for(lambda: Path(cfg.status.socket).exists(), 20, proc, log, what="status socket")
    pid = int((tmp_path / "run" / "kedge" / "edge.pid").read_text())
    assert runs_in(pid, proc) and pid != proc.pid, "expected the bootloader's child to run the runtime"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: not alive(pid), 10, log=log, what=f"the runtime (pid {pid}) to die with its bootloader")
