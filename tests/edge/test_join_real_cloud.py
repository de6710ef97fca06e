"""`kedge join` against the REAL cloud: `kedge apiserver` + `kedge cloud run` (bootstrap, CloudHub and the
cloud's own edge/node controllers) + `kedge token create`, all as processes — no test handlers."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from runtime.kube.client import KubeClient
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudctl import real_cloud_join_args
from tests.fixtures.procs import KEDGE, Spawner
from tests.fixtures.wait import eventually_async


def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEDGE, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.docker  # `kedge join` checks the Docker engine (preflight)
async def test_join_real_cloud_to_ready(
    apiserver: ApiServer, kube: KubeClient, spawn: Spawner, tmp_path: Path
) -> None:
    eroot = tmp_path / "edge"
    kc = str(apiserver.kubeconfig)
    log, _addr, args = await real_cloud_join_args(
        apiserver.kubeconfig, kube, spawn, tmp_path / "cloud", "real-1"
    )
    args += ["--root", str(eroot), "--labels", "site=lab"]
    try:
        done = await asyncio.to_thread(run, *args)
        assert done.returncode == 0, done.stderr + "\n--- cloud ---\n" + log.read_text()[-3000:]
        assert "Ready after" in done.stderr
        node = json.loads(
            (
                await asyncio.to_thread(
                    subprocess.run,
                    [
                        "kubectl",
                        "--kubeconfig",
                        str(apiserver.kubeconfig),
                        "get",
                        "node",
                        "real-1",
                        "-o",
                        "json",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
            ).stdout
        )
        assert node["metadata"]["labels"]["node-role.kubernetes.io/edge"] == ""
        assert node["metadata"]["labels"]["site"] == "lab"
        assert {"cpu", "memory", "pods", "ephemeral-storage"} <= set(node["status"]["allocatable"])
        assert "-kedge." in node["status"]["nodeInfo"]["kubeletVersion"]
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        st = await asyncio.to_thread(run, "status", "-o", "json", "--root", str(eroot))
        assert st.returncode == 0, st.stdout + st.stderr
        edge = json.loads(st.stdout)["edge"]
        assert edge["healthy"] and edge["cloud"]["peerKind"] == "kedge"

        # a kedge cloud keeps the Lease itself: it exists though the edge never sent lease traffic
        # (written on the cloud's renewal tick, so within one renewal period of the session, not at once)
        async def lease_exists() -> bool:
            cmd = ["kubectl", "--kubeconfig", kc, "-n", "kube-node-lease", "get", "lease/real-1"]
            cmd += ["-o", "name"]
            got = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=30)
            return got.stdout.strip() == "lease.coordination.k8s.io/real-1"

        await eventually_async(lease_exists, within=20.0, what="the cloud-kept Lease of real-1")
        # the same machine re-joining keeps its key and node (converges)
        again = await asyncio.to_thread(run, *args)
        assert again.returncode == 0, again.stderr
    finally:
        r1 = await asyncio.to_thread(run, "reset", "edge", "--force", "--root", str(eroot))
    assert r1.returncode == 0, r1.stdout + r1.stderr
    r2 = await asyncio.to_thread(run, "reset", "edge", "--force", "--root", str(eroot))
    assert r2.returncode == 0 and "removed" not in r2.stdout, r2.stdout
