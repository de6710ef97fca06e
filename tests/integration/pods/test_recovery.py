"""Deletion via deletionTimestamp, spec changes, reboot-like recovery, host ports and users."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import docker
import pytest

from runtime.edge.pods import labels
from tests.fixtures.pods import PodEnv, cstatus
from tests.fixtures.wait import eventually_async

pytestmark = pytest.mark.docker


def cid_of(status: dict, name: str) -> str:
    return str(cstatus(status, name)["containerID"]).removeprefix("docker://")


def pod_containers(client: docker.DockerClient, uid: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{labels.POD_UID}={uid}"})


async def test_deletion_timestamp_terminates_and_late_updates_do_not_revive(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    deleted: list[str] = []

    async def on_deleted(pod: dict) -> None:
        deleted.append(pod["metadata"]["uid"])

    m = pod_env.manager(on_deleted=on_deleted)
    pod = pod_env.pod("delts", [{"name": "app", "command": ["sleep", "3600"]}])
    await m.sync_pod(pod)
    await pod_env.wait("delts", lambda s: s["phase"] == "Running")
    dying = {
        **pod,
        "metadata": {
            **pod["metadata"],
            "deletionTimestamp": "2026-11-28T10:00:00Z",
            "deletionGracePeriodSeconds": 0,
        },
    }
    await m.sync_pod(dying)
    assert deleted == [pod["metadata"]["uid"]]
    assert pod_env.last("delts")["phase"] == "Failed"  # killed: exit 137, as edgecore reported
    assert pod_containers(docker_client, pod["metadata"]["uid"]) == []
    await m.sync_pod(dying)
    await m.sync_pod(pod)  # a stale update after the delete
    assert pod_containers(docker_client, pod["metadata"]["uid"]) == []
    n = len(pod_env.statuses)
    await m.delete_pod({"metadata": {"uid": "never-seen", "name": "x", "namespace": "default"}}, 0)
    assert len(pod_env.statuses) == n and deleted[-1] == "never-seen"


async def test_spec_change_recreates_only_that_container(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    pod = pod_env.pod(
        "change", [{"name": "a", "command": ["sleep", "3600"]}, {"name": "b", "command": ["sleep", "3600"]}]
    )
    await m.sync_pod(pod)
    before = await pod_env.wait("change", lambda s: s["phase"] == "Running")
    pod["spec"]["containers"][1]["env"] = [{"name": "NEW", "value": "1"}]
    await m.sync_pod(pod)
    pod_env.run(m)
    after = await pod_env.wait(
        "change", lambda s: cstatus(s, "b")["restartCount"] == 1 and cstatus(s, "b")["ready"]
    )
    assert cid_of(after, "a") == cid_of(before, "a") and cstatus(after, "a")["restartCount"] == 0
    assert cid_of(after, "b") != cid_of(before, "b")


async def test_reboot_like_loss_of_every_container_is_recovered(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    """dockerd restarted without live-restore (or a reboot) while the runtime was down: all exited."""
    m = pod_env.manager()
    pod = pod_env.pod(
        "reboot",
        [{"name": "app", "command": ["sleep", "3600"]}],
        initContainers=[{"name": "init", "command": ["true"]}],
    )
    await m.sync_pod(pod)
    pod_env.run(m)
    before = await pod_env.wait("reboot", lambda s: s["phase"] == "Running" and cstatus(s, "app")["ready"])
    await pod_env.halt()
    for c in pod_containers(docker_client, pod["metadata"]["uid"]):
        if c.status == "running":
            c.kill()
    m2 = pod_env.manager()
    await m2.start()
    await m2.sync_pod(pod)
    pod_env.run(m2)
    after = await pod_env.wait(
        "reboot", lambda s: cstatus(s, "app")["restartCount"] == 1 and cstatus(s, "app")["ready"]
    )
    assert after["podIP"] and cid_of(after, "app") != cid_of(before, "app")
    assert cstatus(after, "app")["lastState"]["terminated"]["exitCode"] == 137


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_host_port_and_run_as_user(pod_env: PodEnv, docker_client: docker.DockerClient) -> None:
    port = free_port()
    m = pod_env.manager()
    pod = pod_env.pod(
        "ports",
        [
            {
                "name": "web",
                "command": [
                    "sh",
                    "-c",
                    "mkdir -p /tmp/www && id -u > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
                ],
                "ports": [{"containerPort": 8080, "hostPort": port, "hostIP": "127.0.0.1"}],
                "securityContext": {"runAsUser": 1234, "runAsGroup": 1234, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    )
    await m.sync_pod(pod)
    await pod_env.wait("ports", lambda s: s["phase"] == "Running")

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.read().decode()

    body = await eventually_async(lambda: asyncio.to_thread(fetch), what="the server answering")
    assert body.strip() == "1234"


async def test_char_device_hostpath_is_a_usable_device(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    """The IoT case: a host device (here /dev/null) reaches an unprivileged container as a device."""
    m = pod_env.manager()
    pod = pod_env.pod(
        "dev",
        [
            {
                "name": "app",
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "serial", "mountPath": "/dev/kedge-serial"}],
            }
        ],
        volumes=[{"name": "serial", "hostPath": {"path": "/dev/null", "type": "CharDevice"}}],
    )
    await m.sync_pod(pod)
    st = await pod_env.wait("dev", lambda s: s["phase"] == "Running")
    c = docker_client.containers.get(cid_of(st, "app"))
    res = c.exec_run(["sh", "-c", "test -c /dev/kedge-serial && echo ok > /dev/kedge-serial && echo wrote"])
    assert res.exit_code == 0 and res.output == b"wrote\n"
    assert not docker_client.api.inspect_container(c.id)["HostConfig"]["Privileged"]
    missing = pod_env.pod(
        "nodev",
        [{"name": "app", "command": ["true"], "volumeMounts": [{"name": "serial", "mountPath": "/dev/x"}]}],
        volumes=[{"name": "serial", "hostPath": {"path": "/dev/kedge-absent", "type": "CharDevice"}}],
    )
    await m.sync_pod(missing)
    waiting = cstatus(pod_env.last("nodev"), "app")["state"]["waiting"]
    assert waiting["reason"] == "ContainerCreating" and "/dev/kedge-absent" in waiting["message"]
