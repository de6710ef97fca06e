"""Scenario 4: the Docker engine restarted under a connected edge (a PRIVATE dockerd, tests/fixtures/
dockerd.py: own data-root, exec-root, socket, pid file and bridge — never the machine's engine).

Each fault stops the engine (SIGTERM, or SIGKILL of dockerd alone), keeps it down until the API shows
it — the Node Ready=False "container runtime is down", the pods not Ready — creates a pod meanwhile
(the API update that must not be lost), then starts the engine again and waits for convergence:

- live-restore off: the engine's stop kills every container (SIGKILL: the restarted engine does), so
  pods come back per restartPolicy — `Always` restarted (restartCount + 1), `Never` Failed;
- live-restore on: the containers outlive the engine and nothing is restarted.

    pytest tests/e2e/faults/test_engine_restart.py -s
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.faults.harness import IMAGE, running_containers
from tests.fixtures.dockerd import EngineEnv, edge_on_private_engine
from tests.fixtures.wait import eventually

pytestmark = pytest.mark.root  # a private dockerd needs root


Env = EngineEnv


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with edge_on_private_engine(tmp_path_factory.mktemp("engine"), "eng4") as e:
        yield e


def pod(env: Env, name: str, policy: str = "Always") -> None:
    doc = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"engine": "yes"}},
        "spec": {"nodeName": env.edge.node, "restartPolicy": policy, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "36000"]}]},
    }  # fmt: skip
    env.cloud.kubectl("apply", "-f", "-", stdin=json.dumps(doc))


def pods(env: Env) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in env.cloud.get("pods", "-l", "engine")["items"]}


def condition(obj: dict[str, Any], typ: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c["type"] == typ), {})


def ready(p: dict[str, Any] | None) -> bool:
    return bool(p) and condition(p or {}, "Ready").get("status") == "True"


def restart_count(p: dict[str, Any]) -> int:
    return sum(int(cs.get("restartCount", 0)) for cs in p.get("status", {}).get("containerStatuses") or [])


def node_ready(env: Env) -> dict[str, Any]:
    return condition(env.cloud.get("node", env.edge.node), "Ready")


def down_shown(env: Env, watched: list[str]) -> bool:
    """The API tells the truth about a stopped engine: Node NotReady with the reason, pods not Ready."""
    cond, now = node_ready(env), pods(env)
    return (
        cond.get("status") == "False"
        and "container runtime is down" in cond.get("message", "")
        and not any(ready(now.get(n)) for n in watched)
    )


def fault(env: Env, kind: str, watched: list[str], fresh: str) -> tuple[float, float]:
    """Stop the engine (`term` / `kill`), wait until the API shows it, create `fresh` meanwhile, start it
    again. (seconds until the API showed it, seconds the engine was down)."""
    t0 = time.monotonic()
    if kind == "kill":
        env.dockerd.kill()
    else:
        env.dockerd.stop()
    stopped = time.monotonic()
    eventually(lambda: down_shown(env, watched), 60, "the API to show the engine down", interval=0.5)
    shown = time.monotonic() - stopped
    pod(env, fresh)  # an API update while the engine is down
    env.dockerd.start()
    return round(shown, 1), round(time.monotonic() - t0, 1)


def converge(env: Env, want: dict[str, str], restarts: dict[str, int]) -> tuple[float, dict[str, bool]]:
    """Wait until each pod is in its wanted state (`ready`, `failed`) with `restarts` counted and the
    node Ready; (seconds, what was reached)."""
    t0 = time.monotonic()
    last: dict[str, bool] = {}

    def done() -> bool:
        now = pods(env)
        last.clear()
        for name, state in want.items():
            p = now.get(name) or {}
            if state == "failed":
                last[name] = p.get("status", {}).get("phase") == "Failed"
            else:
                last[name] = ready(p) and restart_count(p) == restarts.get(name, 0)
        last["node ready"] = node_ready(env).get("status") == "True"
        return all(last.values())

    try:
        eventually(done, 120, "pods and node converged after the engine restart", interval=0.5)
    except AssertionError:
        pass  # reported below
    return round(time.monotonic() - t0, 1), dict(last)


def scenario(env: Env, live_restore: bool, kind: str, round_: int, expect: dict[str, str]) -> dict[str, Any]:
    """One fault on running pods `expect` (name → state wanted after it); the fresh pod created during
    the fault must run after it."""
    healthy = [n for n, s in expect.items() if s == "ready"]
    before = running_containers(env.edge)
    counts = {n: restart_count(p) for n, p in pods(env).items()}
    fresh = f"fresh-{round_}"
    shown, down = fault(env, kind, list(expect), fresh)
    bump = 0 if live_restore else 1
    want_counts = {n: counts[n] + bump for n in healthy} | {fresh: 0}
    took, reached = converge(env, expect | {fresh: "ready"}, want_counts)
    after = running_containers(env.edge)
    restarted = sum(1 for n in healthy if after.get(n) != before.get(n))
    line = {
        "scenario": f"engine-restart-{kind}-live-restore-{'on' if live_restore else 'off'}",
        "engine_down_seconds": down,
        "down_shown_after_seconds": shown,
        "lost_api_updates": 0 if reached.get(fresh) else 1,
        "lost_twin_values": None,  # no device in this scenario
        "restarts_of_healthy_containers": restarted,
        "not_converged": sorted(k for k, ok in reached.items() if not ok),
        "converge_seconds": took,
    }
    print(json.dumps(line, sort_keys=True), flush=True)
    env.cloud.kubectl("delete", "pod", fresh, "--wait=false")
    return line


@pytest.mark.timeout(300)
def test_engine_restart_without_live_restore_recovers_pods_per_restart_policy(env: Env) -> None:
    pod(env, "always")
    pod(env, "never", "Never")
    eventually(lambda: ready(pods(env).get("always")) and ready(pods(env).get("never")), 90, "pods Ready")
    f = scenario(env, False, "term", 1, {"always": "ready", "never": "failed"})
    assert f["not_converged"] == [] and f["lost_api_updates"] == 0, f
    assert f["restarts_of_healthy_containers"] == 1, f  # the engine's stop killed it: restarted once
    env.cloud.kubectl("delete", "pod", "never", "--wait=false")
    f = scenario(env, False, "kill", 2, {"always": "ready"})
    assert f["not_converged"] == [] and f["lost_api_updates"] == 0, f
    assert f["restarts_of_healthy_containers"] == 1, f


@pytest.mark.timeout(300)
def test_engine_restart_with_live_restore_restarts_nothing(env: Env) -> None:
    pod(env, "always")
    eventually(lambda: ready(pods(env).get("always")), 90, "the pod Ready")
    n = restart_count(pods(env)["always"])
    env.dockerd.stop()  # the switch to live-restore is a restart of its own, not measured
    env.dockerd.live_restore = True
    env.dockerd.start()
    eventually(
        lambda: ready(p := pods(env).get("always")) and restart_count(p or {}) == n + 1, 90, "Ready again"
    )
    for i, kind in enumerate(("term", "kill"), start=3):
        f = scenario(env, True, kind, i, {"always": "ready"})
        assert f["not_converged"] == [] and f["lost_api_updates"] == 0, f
        assert f["restarts_of_healthy_containers"] == 0, f
