"""Offline autonomy across a real Docker engine restart (issue 9, "Docker engine restarted with the
cloud away → pods back from the cache; cloud back → nothing unchanged restarted").

The edge runs its pods on a PRIVATE dockerd (tests/fixtures/dockerd.py: own socket, data, bridge;
live-restore off) so the engine can be restarted without touching the shared one. A whole kedge as
the user runs it: `kedge init --embedded`, `kedge join --set runtime.docker_host=unix://…`, kubectl.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures.dockerd import EngineEnv, edge_on_private_engine
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"
APP = "eng"


Env = EngineEnv


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with edge_on_private_engine(tmp_path_factory.mktemp("engine"), "eng") as e:
        yield e


def deployment(name: str, replicas: int) -> str:
    pod = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}],
    }
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": pod}},
    })  # fmt: skip


def ready_pods(env: Env, n: int) -> list[dict[str, Any]] | None:
    """The app's pods when exactly `n` exist and all are Running and Ready on the edge node."""
    pods = env.cloud.get("pods", "-l", f"app={APP}")["items"]
    ok = [
        p for p in pods
        if p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == env.edge.node
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]  # fmt: skip
    return ok if len(ok) == n == len(pods) else None


def running(env: Env, uids: set[str]) -> dict[str, dict[str, Any]]:
    """Running container id → facts, for the containers (sandbox and app) of the pods `uids`."""
    return {
        cid: c for cid, c in env.edge.containers().items()
        if c["labels"].get("io.kedge.pod.uid") in uids and c["running"]
    }  # fmt: skip


def all_back(env: Env, uids: set[str], old: set[str]) -> dict[str, dict[str, Any]] | None:
    """Every pod again has a running sandbox and app container, none of them one of `old`."""
    now = running(env, uids)
    kinds = {
        (c["labels"]["io.kedge.pod.uid"], c["labels"].get("io.kedge.container.kind")) for c in now.values()
    }
    want = {(u, k) for u in uids for k in ("sandbox", "app")}
    return now if kinds == want and len(now) == 2 * len(uids) and not set(now) & old else None


def local_pods(env: Env, names: set[str]) -> tuple[int, dict[str, dict[str, Any]]] | None:
    """(`kedge status` exit code, its pod rows by name) once every named pod is Running locally."""
    rc, doc = env.edge.status()
    rows = {p["name"]: p for p in doc["edge"].get("pods") or [] if p["name"] in names}
    ok = set(rows) == names and all(r["phase"] == "Running" and r["ready"] == "1/1" for r in rows.values())
    return (rc, rows) if ok else None


@pytest.mark.timeout(420)
def test_engine_restart_offline_brings_pods_back_and_reconnect_restarts_nothing(env: Env) -> None:
    cloud, edge, dockerd = env.cloud, env.edge, env.dockerd
    cloud.kubectl("apply", "-f", "-", stdin=deployment(APP, 2))
    pods = eventually(lambda: ready_pods(env, 2), 90, "2 pods Running/Ready on the private engine")
    uids = {p["metadata"]["uid"] for p in pods}
    names = {p["metadata"]["name"] for p in pods}
    assert all(p["status"]["podIP"].startswith(f"172.31.{dockerd.subnet}.") for p in pods), (
        "not on the private bridge"
    )
    first = running(env, uids)
    assert len(first) == 4  # 2 sandboxes + 2 app containers

    cloud.stop_cloud()
    eventually(lambda: not edge.connected(), 30, "the edge to notice the cloud is gone")

    # 1) the engine restarts under a running edge runtime: every container dies (live-restore off)
    took = dockerd.restart()
    # the runtime keeps running and may already have started replacements: check the old containers
    assert not set(running(env, uids)) & set(first), "live-restore is off: the old containers must be gone"
    t0 = time.monotonic()
    second = eventually(lambda: all_back(env, uids, set(first)), 90, "the pods back on the restarted engine",
                   log=edge.paths.log_file)  # fmt: skip
    back = time.monotonic() - t0
    apps = [c for c in second.values() if c["labels"].get("io.kedge.container.kind") == "app"]
    assert sorted(int(c["labels"]["io.kedge.container.restartCount"]) for c in apps) == [1, 1], apps
    rc, rows = eventually(lambda: local_pods(env, names), 30, "`kedge status` serving the pods Running")
    assert rc != 0, "kedge status must exit non-zero while the cloud is away"
    assert all(r["restarts"] >= 1 for r in rows.values()), rows
    print(f"\nengine restart {took:.1f} s; pods back {back:.1f} s after it (runtime kept running)")

    # 2) "reboot": the runtime dies with the engine, both come back with the cloud still away
    edge.kill9()
    took = dockerd.restart()
    assert not set(running(env, uids)) & set(second), "the engine restart must have stopped the containers"
    t0 = time.monotonic()
    edge.run_detached()
    third = eventually(lambda: all_back(env, uids, set(second)), 90, "the pods back after the reboot",
                  log=edge.root / "edge-run.log")  # fmt: skip
    back = time.monotonic() - t0
    rc, rows = eventually(
        lambda: local_pods(env, names), 30, "`kedge status` serving the pods after the reboot"
    )
    assert rc != 0
    apps = [c for c in third.values() if c["labels"].get("io.kedge.container.kind") == "app"]
    assert sorted(int(c["labels"]["io.kedge.container.restartCount"]) for c in apps) == [2, 2], apps
    print(f"reboot: engine restart {took:.1f} s; pods back {back:.1f} s after `kedge edge run`")

    # 3) the cloud returns: status goes up, nothing is restarted because the link is back
    ids = {cid: c["started"] for cid, c in third.items()}
    out = cloud.init("--no-token")
    assert "kedge cloud run pid" in out.stderr + out.stdout
    eventually(edge.connected, 60, "the edge reconnected")

    def api_current() -> list[dict[str, Any]] | None:
        """Ready pods whose API status names the containers that run now (the queued status went up)."""
        got = ready_pods(env, 2)
        cur = got and all(cs["containerID"].removeprefix("docker://") in ids
                          for p in got for cs in p["status"]["containerStatuses"])  # fmt: skip
        return got if cur else None

    after = eventually(api_current, 60, "the pods Running/Ready in the API with the new containers")
    assert {p["metadata"]["uid"] for p in after} == uids
    assert [cs["restartCount"] for p in after for cs in p["status"]["containerStatuses"]] == [2, 2]
    # the previous instance stays for lastState (kubelet keeps one); older generations are removed
    every = {cid: c for cid, c in edge.containers().items() if c["labels"].get("io.kedge.pod.uid") in uids}
    exited = {cid for cid, c in every.items() if not c["running"]}
    assert len(every) == 6 and exited <= set(second) and len(exited) == 2, every
    for p in after:
        (cs,) = p["status"]["containerStatuses"]
        assert cs["lastState"]["terminated"]["containerID"].removeprefix("docker://") in exited, cs
    time.sleep(3)  # a few reconcile periods after the reconnect
    assert {cid: c["started"] for cid, c in running(env, uids).items()} == ids, "a container was restarted"
    cloud.kubectl("delete", "deployment", APP, "--wait=false")
