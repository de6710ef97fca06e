"""The edge runtime process: a light import graph, and a corrupt cache announced as a new epoch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runtime.edge.run import EdgeRuntime
from tests.fixtures.edge import RecordedCloud, make_edge_root, running
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async

HEAVY = (
    "typer",
    "rich",
    "lightkube",
    "cryptography",
    "httpx",
    "docker",
    "aiohttp",
    "yaml",
    "kubeedge_cli",
    "grpc",
    "grpclib",
)


def test_edge_run_import_graph_stays_light() -> None:
    code = (
        "import sys, runtime.edge.launcher, runtime.edge.run, kubeedge_cli.entry; "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.split()
    loaded = [m for m in HEAVY if m in out and m != "kubeedge_cli"]
    assert not loaded, f"`kedge edge run` imports {loaded}"


async def test_corrupt_cache_restarts_with_a_new_epoch(
    recorded_cloud: RecordedCloud, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    hub = recorded_cloud.hub
    cfg = make_edge_root(tmp_path, tls_certs, "ep-1", recorded_cloud.server)
    epochs = []
    for corrupt in (False, True, False):
        if corrupt:
            with open(cfg.cache.db, "r+b") as f:  # noqa: ASYNC230 - a test poking a file
                f.write(os.urandom(4096))
        async with running(EdgeRuntime(cfg, tmp_path, pods=False)) as rt:
            await eventually_async(lambda: hub.connected("ep-1") and hub.sessions()[0].epoch, 15, "session")
            assert rt.store is not None
            assert hub.sessions()[0].epoch == rt.store.epoch
            epochs.append(rt.store.epoch)
        await eventually_async(lambda: not hub.connected("ep-1"), 10, "session end")
    assert epochs[0] != epochs[1], "a rebuilt cache must announce a new epoch (full resync)"
    assert epochs[1] == epochs[2], "an intact cache keeps its epoch (no needless resync)"
    assert [p for p in os.listdir(Path(cfg.cache.db).parent) if ".corrupt-" in p]
