"""`kedge status` for the edge role: runtime down (files), runtime up with the cloud away; same schema."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
from pathlib import Path

import yaml

from runtime.edge.metastore import MetaStore
from runtime.edge.statusd import query
from runtime.protocol import new_message
from tests.edge.test_join import kedge
from tests.fixtures.edge import make_edge_root
from tests.fixtures.procs import KEDGE, Spawner, runs_in
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed_cache(db: Path) -> None:
    async def go() -> None:
        store = await MetaStore.open(db)
        pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}}
        await store.apply(new_message("edgecontroller", "resource", "insert", "default/pod/p", pod))
        await store.close()

    asyncio.run(go())


def test_status_offline_then_runtime_without_cloud(
    tls_certs: TLSCerts, tmp_path: Path, spawn: Spawner
) -> None:
    cfg = make_edge_root(tmp_path, tls_certs, "st-1", f"127.0.0.1:{closed_port()}")
    seed_cache(Path(cfg.cache.db))
    off = kedge("status", "-o", "json", "--root", str(tmp_path))
    assert off.returncode == 1, off.stdout + off.stderr
    edge = json.loads(off.stdout)["edge"]
    assert edge["running"] is False and edge["healthy"] is False
    assert "not running" in edge["message"]
    assert edge["cache"]["objects"] == {"pod": 1} and edge["cache"]["epoch"]
    assert edge["certificate"]["notAfter"] and edge["node"]["name"] == "st-1"
    as_yaml = yaml.safe_load(kedge("status", "-o", "yaml", "--root", str(tmp_path)).stdout)
    assert as_yaml == {"edge": {**edge, "cache": as_yaml["edge"]["cache"]}}
    table = kedge("status", "--root", str(tmp_path))
    assert table.returncode == 1 and "NOT RUNNING" in table.stdout

    proc, log = spawn([*KEDGE, "edge", "run", "--root", str(tmp_path), "--no-pods"], "edge")
    sock = Path(cfg.status.socket)
    eventually(lambda: sock.exists(), 20, proc=proc, log=log, what="status socket")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    on = kedge("status", "-o", "json", "--root", str(tmp_path))
    assert on.returncode == 1, on.stdout  # the cloud is away: unhealthy
    live = json.loads(on.stdout)["edge"]
    assert live["running"] is True and live["healthy"] is False
    assert live["cloud"]["connected"] is False and live["cloud"]["lastError"]
    assert live["cache"]["objects"] == {"pod": 1} and live["cache"]["epoch"] == edge["cache"]["epoch"]
    assert set(live) == set(edge), "online and offline status share one schema"
    assert set(live["cloud"]) >= set(edge["cloud"]) and set(live["node"]) == set(edge["node"])
    code, body = query(sock, "/metrics")
    assert code == 200 and b"kedge_edge_cloud_connected 0.0\n" in body
    assert b'kedge_edge_cache_objects{type="pod"} 1.0\n' in body
    pid = int((tmp_path / "run" / "kedge" / "edge.pid").read_text())
    assert runs_in(pid, proc)  # the one-file binary's pid file names the bootloader's child
    second = kedge("edge", "run", "--root", str(tmp_path), "--no-pods", timeout=20)
    assert second.returncode == 2 and "already running" in second.stderr
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, log.read_text()[-2000:]
    assert not sock.exists() and not (tmp_path / "run" / "kedge" / "edge.pid").exists()


def test_the_edge_runs_on_the_event_loop_edge_toml_names(
    tls_certs: TLSCerts, tmp_path: Path, spawn: Spawner
) -> None:
    """asyncio's own loop by default (tests/edge/test_join.py), uvloop when edge.toml says so."""
    cfg = make_edge_root(tmp_path, tls_certs, "loop-1", f"127.0.0.1:{closed_port()}")
    argv = [*KEDGE, "edge", "run", "--root", str(tmp_path), "--no-pods", "--set", "event_loop=uvloop"]
    proc, log = spawn(argv, "edge")
    sock = Path(cfg.status.socket)
    eventually(lambda: sock.exists(), 20, proc=proc, log=log, what="status socket")
    pid = int((tmp_path / "run" / "kedge" / "edge.pid").read_text())
    assert "uvloop" in Path(f"/proc/{pid}/maps").read_text()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, log.read_text()[-2000:]


def test_reset_dry_run_changes_nothing(tls_certs: TLSCerts, tmp_path: Path) -> None:
    cfg = make_edge_root(tmp_path, tls_certs, "dry-1", f"127.0.0.1:{closed_port()}")
    seed_cache(Path(cfg.cache.db))
    done = kedge("reset", "edge", "--dry-run", "-o", "json", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = {r["object"]: r["result"] for r in json.loads(done.stdout)}
    config = str(tmp_path / "etc" / "kedge" / "edge.toml")
    assert rows[config] == "would delete" and rows["process kedge edge run"] == "not running"
    assert (tmp_path / "etc" / "kedge" / "edge.toml").exists() and Path(cfg.cache.db).exists()
    assert not any(r == "removed" for r in rows.values())
