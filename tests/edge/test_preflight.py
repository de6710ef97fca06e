"""`kedge join` preflight: each failure names its check and exits 3 before anything changes."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
from pathlib import Path

import pytest

from runtime.edge.certclient import CertServer
from runtime.edge.join import CHECKS
from runtime.pki import tokens
from tests.edge.test_join import join_args, kedge
from tests.fixtures.edgecloud import EdgeCloud
from tests.fixtures.procs import KEDGE, Spawner, runs_in
from tests.fixtures.wait import eventually


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def failed_checks(done: object) -> list[str]:
    import subprocess

    assert isinstance(done, subprocess.CompletedProcess)
    assert done.returncode == 3, f"exit {done.returncode}: {done.stderr}"
    return [
        line.split()[1]
        for line in done.stderr.splitlines()
        if line.startswith("[preflight]") and " FAIL " in line
    ]


@pytest.mark.docker  # `kedge join` checks the Docker engine (preflight)
def test_preflight_failures_are_named(edge_cloud: EdgeCloud, tmp_path: Path) -> None:
    root = tmp_path / "edge"
    base = join_args(edge_cloud, root, "pf-1", "--dry-run")
    ok = kedge(*base, "-o", "json")
    assert ok.returncode == 0, ok.stderr
    plan = json.loads(ok.stdout)
    verdicts = {c["name"]: c["verdict"] for c in plan["checks"]}
    assert set(CHECKS) - {"clock-skew"} <= set(verdicts)  # clock-skew: only when the cloud sent a Date
    assert "error" not in verdicts.values()
    assert not root.exists(), "a dry run must not create anything"

    # wrong hub port: the hub endpoint is named, not the certificate server
    wrong_port = [a if a != f"127.0.0.1:{edge_cloud.hub}" else f"127.0.0.1:{closed_port()}" for a in base]
    done = kedge(*wrong_port)
    assert failed_checks(done) == ["hub-port"], done.stderr
    assert "preflight failed: hub-port" in done.stderr
    # wrong certificate port
    wrong_cert = [a if a != str(edge_cloud.bootstrap) else str(closed_port()) for a in base]
    assert "cert-port" in failed_checks(kedge(*wrong_cert))

    # a token whose CA hash is not this cloud's
    _, jwt = tokens.split_token(edge_cloud.token)
    bad_hash = hashlib.sha256(b"another CA").hexdigest() + "." + jwt
    done = kedge(*[bad_hash if a == edge_cloud.token else a for a in base])
    assert failed_checks(done) == ["ca-hash"], done.stderr

    # an expired token (right CA, exp in the past)
    ca_der = CertServer("127.0.0.1", edge_cloud.bootstrap).fetch_ca()
    _, expired = tokens.make_token(ca_der, b"k" * 32, ttl=-120)
    done = kedge(*[expired if a == edge_cloud.token else a for a in base])
    assert failed_checks(done) == ["token"], done.stderr
    assert "expired" in done.stderr

    # no Docker engine where the config points
    done = kedge(*base, "--set", f"runtime.docker_host=unix://{tmp_path}/no-docker.sock")
    assert failed_checks(done) == ["docker"], done.stderr
    # ... and the check can be downgraded by name
    done = kedge(
        *base,
        "--set",
        f"runtime.docker_host=unix://{tmp_path}/no-docker.sock",
        "--ignore-preflight-errors=docker",
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.docker  # `kedge join` checks the Docker engine (preflight)
def test_join_foreground_runs_in_process(edge_cloud: EdgeCloud, tmp_path: Path, spawn: Spawner) -> None:
    root = tmp_path / "fg"
    proc, log = spawn([*KEDGE, *join_args(edge_cloud, root, "fg-1", "--foreground")], "join-fg")
    eventually(
        lambda: b"running in the foreground" in log.read_bytes(), 60, proc=proc, log=log, what="node Ready"
    )
    pid = int((root / "run" / "kedge" / "edge.pid").read_text())
    assert runs_in(pid, proc)  # in this process (the one-file binary: the bootloader's child)
    st = kedge("status", "-o", "json", "--root", str(root))
    assert st.returncode == 0, st.stdout + st.stderr
    assert json.loads(st.stdout)["edge"]["process"]["pid"] == pid
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0, log.read_text()[-2000:]
