"""Restarts, image pulls, probes, adoption, deletion and orphans on the real Docker engine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker
import pytest

from runtime.edge.pods import labels
from tests.fixtures.pods import PodEnv, cstatus

pytestmark = pytest.mark.docker


def cid_of(status: dict, name: str) -> str:
    return str(cstatus(status, name)["containerID"]).removeprefix("docker://")


async def test_crashing_container_restarts_with_backoff(pod_env: PodEnv) -> None:
    m = pod_env.manager(backoff_initial=1.0, backoff_max=2.0)
    await m.sync_pod(pod_env.pod("crash", [{"name": "app", "command": ["sh", "-c", "sleep 0.2; exit 3"]}]))
    pod_env.run(m)
    st = await pod_env.wait("crash", lambda s: cstatus(s, "app")["restartCount"] >= 2)
    seen = [cstatus(s, "app")["state"] for n, s in pod_env.statuses if n == "crash"]
    backoffs = [s["waiting"] for s in seen if s.get("waiting", {}).get("reason") == "CrashLoopBackOff"]
    assert backoffs, seen
    assert "back-off" in backoffs[0]["message"]
    last = cstatus(st, "app")["lastState"]["terminated"]
    assert last["exitCode"] == 3 and last["reason"] == "Error"
    in_backoff = [
        s
        for n, s in pod_env.statuses
        if n == "crash" and cstatus(s, "app")["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
    ]
    # restartPolicy Always: a crash loop is still phase Running, but not Ready
    assert {s["phase"] for s in in_backoff} == {"Running"}
    assert {next(c for c in s["conditions"] if c["type"] == "Ready")["status"] for s in in_backoff} == {
        "False"
    }


async def test_restart_policy_never_and_onfailure(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    await m.sync_pod(
        pod_env.pod("never", [{"name": "app", "command": ["sh", "-c", "exit 4"]}], restartPolicy="Never")
    )
    await m.sync_pod(pod_env.pod("done", [{"name": "app", "command": ["true"]}], restartPolicy="OnFailure"))
    pod_env.run(m)
    failed = await pod_env.wait("never", lambda s: s["phase"] == "Failed")
    assert cstatus(failed, "app")["state"]["terminated"]["exitCode"] == 4
    assert next(c for c in failed["conditions"] if c["type"] == "Ready")["reason"] == "PodFailed"
    ok = await pod_env.wait("done", lambda s: s["phase"] == "Succeeded")
    await asyncio.sleep(1.0)  # the thing under test: no restart follows
    assert cstatus(pod_env.last("never"), "app")["restartCount"] == 0
    assert cstatus(ok, "app")["restartCount"] == 0 and pod_env.last("done")["phase"] == "Succeeded"


async def test_missing_image_is_err_image_pull_not_a_crash(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    pod = pod_env.pod(
        "nopull",
        [
            {
                "name": "app",
                "image": "registry.invalid/kedge/none:1",
                "imagePullPolicy": "IfNotPresent",
                "command": ["true"],
            }
        ],
    )
    await m.sync_pod(pod)
    st = pod_env.last("nopull")
    waiting = cstatus(st, "app")["state"]["waiting"]
    assert waiting["reason"] == "ErrImagePull" and "registry.invalid/kedge/none:1" in waiting["message"]
    assert st["phase"] == "Pending"
    pod_env.run(m)
    await pod_env.wait(
        "nopull", lambda s: cstatus(s, "app")["state"]["waiting"]["reason"] == "ImagePullBackOff"
    )
    never = pod_env.pod("neverpull", [{"name": "app", "image": "kedge.local/absent:1", "command": ["true"]}])
    await m.sync_pod(never)
    assert cstatus(pod_env.last("neverpull"), "app")["state"]["waiting"]["reason"] == "ErrImageNeverPull"


async def test_readiness_probe_flips_ready(pod_env: PodEnv, docker_client: docker.DockerClient) -> None:
    m = pod_env.manager()
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 0.2, "failureThreshold": 1}
    await m.sync_pod(
        pod_env.pod("ready", [{"name": "app", "command": ["sleep", "3600"], "readinessProbe": probe}])
    )
    pod_env.run(m)
    st = await pod_env.wait("ready", lambda s: s["phase"] == "Running")
    assert not cstatus(st, "app")["ready"]
    container = docker_client.containers.get(cid_of(st, "app"))
    container.exec_run(["touch", "/tmp/ready"])
    st = await pod_env.wait("ready", lambda s: cstatus(s, "app")["ready"])
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
    container.exec_run(["rm", "/tmp/ready"])
    st = await pod_env.wait("ready", lambda s: not cstatus(s, "app")["ready"])
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"
    assert cstatus(st, "app")["restartCount"] == 0


async def test_liveness_failure_restarts_and_http_tcp_probes(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    m = pod_env.manager()
    pod = pod_env.pod(
        "live",
        [
            {
                "name": "app",
                "command": ["sh", "-c", "mkdir -p /www && touch /www/ok && exec httpd -f -p 8080 -h /www"],
                "ports": [{"name": "http", "containerPort": 8080}],
                "livenessProbe": {
                    "httpGet": {"path": "/ok", "port": "http"},
                    "periodSeconds": 0.2,
                    "failureThreshold": 2,
                },
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 0.2},
                "startupProbe": {"exec": {"command": ["test", "-f", "/www/ok"]}, "periodSeconds": 0.2},
            }
        ],
    )
    await m.sync_pod(pod)
    pod_env.run(m)
    st = await pod_env.wait("live", lambda s: cstatus(s, "app")["ready"])
    assert cstatus(st, "app")["started"]
    docker_client.containers.get(cid_of(st, "app")).exec_run(["rm", "/www/ok"])
    st = await pod_env.wait(
        "live", lambda s: cstatus(s, "app")["restartCount"] == 1 and cstatus(s, "app")["ready"]
    )
    assert cstatus(st, "app")["lastState"]["terminated"]["exitCode"] != 0


async def test_restarted_runtime_adopts_without_restarting(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    await m.start()
    pod = pod_env.pod("adopt", [{"name": "app", "command": ["sleep", "3600"]}])
    await m.sync_pod(pod)
    pod_env.run(m)
    before = await pod_env.wait("adopt", lambda s: s["phase"] == "Running" and cstatus(s, "app")["ready"])
    await pod_env.halt()
    pod_env.statuses.clear()
    m2 = pod_env.manager()
    await m2.start()
    assert pod["metadata"]["uid"] in m2.adopted
    await m2.sync_pod(pod)
    pod_env.run(m2)
    await asyncio.sleep(1.0)  # the thing under test: the adopted pod is left running as it was
    after = pod_env.last("adopt")
    assert cid_of(after, "app") == cid_of(before, "app")
    assert after["podIP"] == before["podIP"] and cstatus(after, "app")["restartCount"] == 0
    assert after["phase"] == "Running" and cstatus(after, "app")["ready"]
    assert after["startTime"] == before["startTime"]
    assert len([s for n, s in pod_env.statuses if n == "adopt"]) == 1  # emitted once, then only changes
    rows = m2.local_status()
    assert rows[0]["name"] == "adopt" and rows[0]["ready"] == "1/1" and rows[0]["phase"] == "Running"


async def test_delete_runs_prestop_and_honours_grace(
    pod_env: PodEnv, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    m = pod_env.manager()
    pod = pod_env.pod(
        "bye",
        [
            {
                "name": "app",
                "command": [
                    "sh",
                    "-c",
                    "trap 'echo term >> /host/log; exit 0' TERM; while true; do sleep 0.1; done",
                ],
                "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop >> /host/log"]}}},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            }
        ],
        volumes=[{"name": "host", "hostPath": {"path": str(host), "type": "Directory"}}],
        terminationGracePeriodSeconds=10,
    )
    await m.sync_pod(pod)
    st = await pod_env.wait("bye", lambda s: s["phase"] == "Running")
    t0 = time.monotonic()
    await m.delete_pod(pod, None)
    took = time.monotonic() - t0
    assert (host / "log").read_text() == "prestop\nterm\n"
    assert took < 5, f"a container that exits on SIGTERM must not wait out the grace period ({took:.1f}s)"
    final = pod_env.last("bye")
    assert cstatus(final, "app")["state"]["terminated"]["exitCode"] == 0
    assert not docker_client.containers.list(
        all=True, filters={"label": f"{labels.POD_UID}={pod['metadata']['uid']}"}
    )
    assert not (pod_env.state / "pods" / pod["metadata"]["uid"]).exists()
    assert cid_of(st, "app")
    assert m.local_status() == []


async def test_stubborn_container_is_killed_after_grace(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    pod = pod_env.pod(
        "stubborn", [{"name": "app", "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]}]
    )
    await m.sync_pod(pod)
    await pod_env.wait("stubborn", lambda s: s["phase"] == "Running")
    t0 = time.monotonic()
    await m.delete_pod(pod, 1)
    took = time.monotonic() - t0
    assert 0.9 < took < 6
    assert cstatus(pod_env.last("stubborn"), "app")["state"]["terminated"]["exitCode"] == 137


async def test_orphans_removed_and_foreign_containers_untouched(
    pod_env: PodEnv, docker_client: docker.DockerClient, busybox_image: str, docker_cleanup: dict[str, str]
) -> None:
    foreign = docker_client.containers.run(
        busybox_image, ["sleep", "3600"], detach=True, labels={**docker_cleanup, labels.NODE: pod_env.node}
    )
    m = pod_env.manager()
    keep = pod_env.pod("keep", [{"name": "app", "command": ["sleep", "3600"]}])
    gone = pod_env.pod(
        "gone", [{"name": "app", "command": ["sleep", "3600"]}], terminationGracePeriodSeconds=0
    )
    await m.sync_pod(keep)
    await m.sync_pod(gone)
    m2 = pod_env.manager()
    await m2.start()
    assert set(m2.adopted) == {keep["metadata"]["uid"], gone["metadata"]["uid"]}
    await m2.remove_orphans({keep["metadata"]["uid"]})
    left = {
        c.labels.get(labels.POD_NAME)
        for c in docker_client.containers.list(all=True, filters={"label": f"{labels.NODE}={pod_env.node}"})
    }
    assert left == {"keep", None}
    foreign.reload()
    assert foreign.status == "running"
    assert not (pod_env.state / "pods" / gone["metadata"]["uid"]).exists()


async def test_lost_sandbox_is_recreated(pod_env: PodEnv, docker_client: docker.DockerClient) -> None:
    m = pod_env.manager()
    pod = pod_env.pod("sbx", [{"name": "app", "command": ["sleep", "3600"]}])
    await m.sync_pod(pod)
    pod_env.run(m)
    st = await pod_env.wait("sbx", lambda s: cstatus(s, "app")["ready"])
    sandbox = docker_client.containers.list(
        filters={"label": [f"{labels.POD_UID}={pod['metadata']['uid']}", f"{labels.KIND}=sandbox"]}
    )[0]
    t0 = time.monotonic()
    sandbox.stop(timeout=10)
    assert time.monotonic() - t0 < 3, "the pause program must exit on SIGTERM"
    sandbox.reload()
    assert sandbox.attrs["State"]["ExitCode"] == 0
    st2 = await pod_env.wait(
        "sbx", lambda s: cstatus(s, "app")["restartCount"] == 1 and cstatus(s, "app")["ready"]
    )
    assert cid_of(st2, "app") != cid_of(st, "app") and st2["podIP"]


async def test_host_network_pod_has_no_sandbox(pod_env: PodEnv, docker_client: docker.DockerClient) -> None:
    m = pod_env.manager()
    pod = pod_env.pod("hostnet", [{"name": "app", "command": ["sleep", "3600"]}], hostNetwork=True)
    await m.sync_pod(pod)
    st = await pod_env.wait("hostnet", lambda s: s["phase"] == "Running")
    kinds = [
        c.labels[labels.KIND]
        for c in docker_client.containers.list(
            filters={"label": f"{labels.POD_UID}={pod['metadata']['uid']}"}
        )
    ]
    assert kinds == ["app"]
    assert st["podIP"] == st["hostIP"] == "127.0.0.1"
    info = docker_client.api.inspect_container(cid_of(st, "app"))
    assert info["HostConfig"]["NetworkMode"] == "host"


async def test_adoption_keeps_probed_readiness_without_flapping(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 5, "initialDelaySeconds": 3}
    pod = pod_env.pod("steady", [{"name": "app", "command": ["sleep", "3600"], "readinessProbe": probe}])
    await m.sync_pod(pod)
    pod_env.run(m)
    ready = await pod_env.wait("steady", lambda s: cstatus(s, "app")["ready"], within=10)
    await pod_env.halt()
    pod_env.statuses.clear()
    cached = {**pod, "status": ready}  # what the edge's cache holds: the pod with its last status
    m2 = pod_env.manager()
    await m2.start()
    await m2.sync_pod(cached)
    pod_env.run(m2)
    await asyncio.sleep(1.0)  # the thing under test: nothing is sent
    # the cached pod carries the status the cloud holds: nothing changed, so nothing is sent
    assert pod_env.statuses == []
    assert m2.local_status()[0]["ready"] == "1/1"
    assert cid_of(m2.pods[pod["metadata"]["uid"]].status or {}, "app") == cid_of(ready, "app")


async def test_pull_always_falls_back_to_the_local_image_offline(pod_env: PodEnv) -> None:
    """Edge deviation from kubelet: an unreachable registry must not stop a present image from running."""
    m = pod_env.manager()
    await m.sync_pod(
        pod_env.pod("always", [{"name": "app", "command": ["sleep", "3600"], "imagePullPolicy": "Always"}])
    )
    st = await pod_env.wait("always", lambda s: s["phase"] == "Running")
    assert cstatus(st, "app")["imageID"].startswith("sha256:")


async def test_failing_init_container(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    init = [{"name": "setup", "command": ["sh", "-c", "exit 2"]}]
    app = [{"name": "app", "command": ["sleep", "3600"]}]
    await m.sync_pod(
        pod_env.pod(
            "initnever", [dict(c) for c in app], restartPolicy="Never", initContainers=[dict(c) for c in init]
        )
    )
    await m.sync_pod(pod_env.pod("initretry", [dict(c) for c in app], initContainers=[dict(c) for c in init]))
    pod_env.run(m)
    failed = await pod_env.wait("initnever", lambda s: s["phase"] == "Failed")
    assert failed["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert cstatus(failed, "app")["state"]["waiting"]["reason"] == "PodInitializing"
    retry = await pod_env.wait("initretry", lambda s: s["initContainerStatuses"][0]["restartCount"] >= 1)
    assert retry["phase"] == "Pending"
    assert {c["type"]: c["status"] for c in retry["conditions"]}["Initialized"] == "False"


async def test_a_failing_prestop_hook_is_a_failed_prestop_hook_event(pod_env: PodEnv) -> None:
    from runtime.edge.events import Recorder

    events = Recorder(pod_env.node)
    m = pod_env.manager(events=events)
    pod = pod_env.pod(
        "hook",
        [{"name": "app", "command": ["sleep", "3600"],
          "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo secret-ish; exit 7"]}}}}],
        terminationGracePeriodSeconds=2,
    )  # fmt: skip
    await m.sync_pod(pod)
    await pod_env.wait("hook", lambda s: s["phase"] == "Running")
    await m.delete_pod(pod, None)
    got = [m.content for m in events.queue if isinstance(m.content, dict)]
    failed = [e for e in got if e["reason"] == "FailedPreStopHook"]
    assert len(failed) == 1, [e["reason"] for e in got]
    assert failed[0]["type"] == "Warning" and failed[0]["message"] == "PreStopHook failed"  # no output
    assert failed[0]["involvedObject"]["fieldPath"] == "spec.containers{app}"
    assert any(e["reason"] == "Killing" for e in got)
