"""kill -9 of `kedge edge run` while the cloud pushes objects, repeatedly: every object the cloud saw
acked is in the cache afterwards (ack follows commit), and the database stays intact."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from runtime.kube.client import KubeClient
from runtime.protocol import new_message
from runtime.protocol.delivery import Acked
from tests.fixtures.edge import CloudRequests, make_edge_root, serving
from tests.fixtures.procs import KEDGE, start, stop
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually_async


def cm(i: int) -> dict[str, Any]:
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "data": {"v": "x" * 100},
        "metadata": {"name": f"cm{i}", "namespace": "default", "uid": f"u{i}", "resourceVersion": str(i)},
    }


async def test_kill_9_while_caching_loses_no_acked_object(
    tls_certs: TLSCerts, tmp_path: Path, cloud_api: KubeClient
) -> None:
    acked: set[str] = set()

    async def on_ack(node: str, ev: Acked) -> None:
        acked.add(ev.key)

    ctl = CloudRequests(cloud_api)
    async with serving(ctl, tls_certs.server_context(), on_ack=on_ack, resend_after=1.0) as hub:
        cfg = make_edge_root(tmp_path, tls_certs, "k9-1", f"127.0.0.1:{hub.bound_port}")
        sent = 0
        for round_ in range(4):
            proc = start([*KEDGE, "edge", "run", "--root", str(tmp_path), "--no-pods"], tmp_path / "edge.log")
            try:
                await eventually_async(lambda: hub.connected("k9-1"), 20, "edge connected")
                before = len(acked)
                for _ in range(150):
                    sent += 1
                    await hub.send(
                        "k9-1",
                        new_message(
                            "edgecontroller",
                            "resource",
                            "insert",
                            f"default/configmap/cm{sent}",
                            cm(sent),
                            resourceversion=str(sent),
                        ),
                        reliable_key=f"u{sent}",
                    )
                await eventually_async(lambda: len(acked) > before + 5, 20, "some acks")  # noqa: B023
                await asyncio.sleep(0.02 * round_)  # the thing under test: a different kill point
                os.kill(proc.pid, signal.SIGKILL)
                await asyncio.to_thread(proc.wait, 10)
                await eventually_async(lambda: not hub.connected("k9-1"), 40, "session dropped")
            finally:
                stop(proc)
        db = sqlite3.connect(cfg.cache.db)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            cached = {r[0] for r in db.execute("SELECT uid FROM objects WHERE type='configmap'")}
        finally:
            db.close()
        assert len(acked) > 20
        print(f"sent {sent}, acked {len(acked)}, cached {len(cached)}")
        lost = acked - cached
        assert not lost, f"{len(lost)} acked objects missing after kill -9: {sorted(lost)[:5]}"
