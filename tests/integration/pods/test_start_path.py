"""The fast start path on the real engine: containers created while the sandbox starts, a sandbox whose
start fails, a runtime restarted over never-started containers, a busy reconcile loop racing sync_pod."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import docker
import pytest

from runtime.edge.pods import labels
from tests.fixtures.pods import PodEnv, cstatus

pytestmark = pytest.mark.docker


def instant(docker_time: str) -> tuple[str, str]:
    """Docker's RFC 3339 time (trailing zeros of the nanoseconds trimmed) in a comparable form."""
    sec, _, frac = docker_time.rstrip("Z").partition(".")
    return sec, frac.ljust(9, "0")


def of_kind(client: docker.DockerClient, uid: str, kind: str) -> list[dict]:
    filters = {"label": [f"{labels.POD_UID}={uid}", f"{labels.KIND}={kind}"]}
    return [client.api.inspect_container(c["Id"]) for c in client.api.containers(all=True, filters=filters)]


async def test_app_containers_are_created_while_the_sandbox_starts(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    m = pod_env.manager()
    await m.start()
    pod = pod_env.pod(
        "overlap", [{"name": "a", "command": ["sleep", "3600"]}, {"name": "b", "command": ["sleep", "3600"]}]
    )
    await m.sync_pod(pod)
    st = pod_env.last("overlap")
    assert st["phase"] == "Running" and all(c["restartCount"] == 0 for c in st["containerStatuses"])
    uid = pod["metadata"]["uid"]
    (sandbox,) = of_kind(docker_client, uid, "sandbox")
    apps = of_kind(docker_client, uid, "app")
    assert len(apps) == 2 and all(a["State"]["Running"] for a in apps)
    assert all(instant(a["Created"]) < instant(sandbox["State"]["StartedAt"]) for a in apps)
    assert all(a["HostConfig"]["NetworkMode"] == f"container:{sandbox['Id']}" for a in apps)
    assert sandbox["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]


def seccomp_mode(client: docker.DockerClient, container_id: str) -> str:
    """The kernel's view of PID 1's seccomp mode in a container: 0 none, 2 filter."""
    out = client.containers.get(container_id).exec_run(["grep", "^Seccomp:", "/proc/1/status"]).output
    return out.decode().split()[-1]


async def test_seccomp_follows_kubelet_defaults(pod_env: PodEnv, docker_client: docker.DockerClient) -> None:
    """No profile → unconfined (kubelet without SeccompDefault); RuntimeDefault on the container or
    the pod → docker's filter, seen by the kernel inside the running container."""
    m = pod_env.manager()
    await m.start()
    plain = {"name": "plain", "command": ["sleep", "3600"]}
    strict = {**plain, "name": "strict", "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}
    pod = pod_env.pod("seccomp", [plain, strict])
    await m.sync_pod(pod)
    assert pod_env.last("seccomp")["phase"] == "Running"
    apps = {
        a["Config"]["Labels"][labels.CONTAINER]: a
        for a in of_kind(docker_client, pod["metadata"]["uid"], "app")
    }
    assert seccomp_mode(docker_client, apps["plain"]["Id"]) == "0"
    assert seccomp_mode(docker_client, apps["strict"]["Id"]) == "2"


async def test_failed_sandbox_start_then_runtime_restart_starts_fresh(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    """The host port is taken: the sandbox start fails after its app container was created. The
    status says so (not a terminated container); a new runtime over that leftover runs the pod with
    restartCount 0 once the port is free."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    pod = pod_env.pod(
        "busy-port",
        [
            {
                "name": "web",
                "command": ["sleep", "3600"],
                "ports": [{"containerPort": 8080, "hostPort": port, "hostIP": "127.0.0.1"}],
            }
        ],
    )
    uid = pod["metadata"]["uid"]
    try:
        first = pod_env.manager()
        await first.start()
        await first.sync_pod(pod)
        web = cstatus(pod_env.last("busy-port"), "web")
        assert web["state"]["waiting"]["reason"] == "ContainerCreating", web
        assert "failed to create pod sandbox" in web["state"]["waiting"]["message"]
        assert "lastState" not in web or not web["lastState"], web
        (created,) = of_kind(docker_client, uid, "app")
        assert created["State"]["Status"] == "created"
    finally:
        holder.close()
    await pod_env.halt()
    second = pod_env.manager()
    await second.start()
    await second.sync_pod(pod)
    pod_env.run(second)
    st = await pod_env.wait("busy-port", lambda s: s["phase"] == "Running" and cstatus(s, "web")["ready"])
    assert cstatus(st, "web")["restartCount"] == 0
    (app,) = of_kind(docker_client, uid, "app")  # the leftover was replaced, not kept as lastState
    assert app["State"]["Running"] and app["Id"] != created["Id"]


async def test_busy_reconcile_loop_does_not_race_sync_pod(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    """A reconcile pass that listed containers before sync_pod created them must not act on that
    listing (it used to create the sandbox again: a refused docker create, a re-list, a warning)."""
    m = pod_env.manager(sync_period=0.01)
    creates: list[str] = []
    real_create = m.docker.create

    async def create(name: str, **kw: Any) -> str:
        creates.append(name)
        return await real_create(name, **kw)

    m.docker.create = create  # type: ignore[method-assign]  # counted, still the real engine
    await m.start()
    pod_env.run(m)
    pods = [pod_env.pod(f"race-{i}", [{"name": "app", "command": ["sleep", "3600"]}]) for i in range(6)]
    for pod in pods:
        await m.sync_pod(pod)
        await asyncio.sleep(0.02)  # the thing under test: a pass lists meanwhile
    for pod in pods:
        await pod_env.wait(pod["metadata"]["name"], lambda s: s["phase"] == "Running")
    await asyncio.sleep(0.5)  # the thing under test: a few more passes over the running pods, no create
    assert len(creates) == 2 * len(pods), creates  # one sandbox and one app container each
    for pod in pods:
        mine = [s for n, s in pod_env.statuses if n == pod["metadata"]["name"]]
        first_running = next(i for i, s in enumerate(mine) if s["phase"] == "Running")
        assert all(s["phase"] == "Running" for s in mine[first_running:]), mine
        assert len(of_kind(docker_client, pod["metadata"]["uid"], "sandbox")) == 1


async def test_first_sandbox_on_an_engine_without_the_image_imports_it(
    pod_env: PodEnv, docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox create finds the image missing: it is imported, and the create done once more.
    A throwaway tag stands in for the shared one, which other pods use meanwhile."""
    from runtime.edge.pods import manager, translate

    image = f"kedge.local/pause-test:{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(manager, "PAUSE_IMAGE", image)
    monkeypatch.setattr(translate, "PAUSE_IMAGE", image)
    m = pod_env.manager()
    await m.start()
    pod = pod_env.pod("no-pause", [{"name": "app", "command": ["sleep", "3600"]}])
    try:
        await m.sync_pod(pod)
        assert pod_env.last("no-pause")["phase"] == "Running"
        (sandbox,) = of_kind(docker_client, pod["metadata"]["uid"], "sandbox")
        assert sandbox["Config"]["Image"] == image and sandbox["State"]["Running"]
    finally:
        for c in docker_client.api.containers(all=True, filters={"ancestor": image}):
            docker_client.api.remove_container(c["Id"], force=True)
        docker_client.images.remove(image, force=True)


async def test_the_echo_of_our_own_status_asks_nothing_of_docker(pod_env: PodEnv) -> None:
    """The cloud sends the pod back after each podpatch (new status and resourceVersion): that update
    is not reconciled — no listing or inspect lands on the engine while the next pod starts. A change
    of what the pod asks (here a label, which downward API volumes show) is."""
    m = pod_env.manager()
    await m.start()
    pod = pod_env.pod("echo", [{"name": "app", "command": ["sleep", "3600"]}])
    await m.sync_pod(pod)
    status = pod_env.last("echo")
    assert status["phase"] == "Running"
    calls: list[str] = []
    for name in ("list_containers", "inspect", "create", "start", "remove"):
        real = getattr(m.docker, name)

        async def counted(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            calls.append(_name)
            return await _real(*a, **k)

        setattr(m.docker, name, counted)
    echo = {**pod, "metadata": {**pod["metadata"], "resourceVersion": "4242"}, "status": status}
    await m.sync_pod(echo)
    assert calls == []
    relabelled = {**echo, "metadata": {**echo["metadata"], "labels": {"tier": "edge"}}}
    await m.sync_pod(relabelled)
    assert "list_containers" in calls
    assert pod_env.last("echo")["phase"] == "Running" and m.pods[pod["metadata"]["uid"]].pod is relabelled
