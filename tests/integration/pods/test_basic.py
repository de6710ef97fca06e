"""Pods on the real Docker engine: namespaces, init order, env, volumes."""

from __future__ import annotations

import docker
import pytest

from tests.fixtures.pods import PodEnv, cstatus
from tests.fixtures.wait import eventually_async

pytestmark = pytest.mark.docker


async def test_two_containers_share_the_network_namespace(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    m = pod_env.manager()
    await m.start()
    pod = pod_env.pod(
        "web",
        [
            {
                "name": "server",
                "command": [
                    "sh",
                    "-c",
                    "mkdir -p /www && echo hello-from-httpd > /www/index.html"
                    " && exec httpd -f -p 8080 -h /www",
                ],
            },
            {
                "name": "client",
                "command": [
                    "sh",
                    "-c",
                    "until wget -q -O /tmp/got http://127.0.0.1:8080/; do "
                    "sleep 0.2; done; cat /tmp/got; exec sleep 3600",
                ],
            },
        ],
    )
    await m.sync_pod(pod)
    pod_env.run(m)
    st = await pod_env.wait(
        "web", lambda s: s["phase"] == "Running" and all(c["ready"] for c in s["containerStatuses"])
    )
    assert st["podIP"] and st["podIP"] != "127.0.0.1"
    client = cstatus(st, "client")["containerID"].removeprefix("docker://")
    logs = docker_client.containers.get(client).logs
    await eventually_async(lambda: b"hello-from-httpd" in logs(), what="the client's log line")
    assert b"hello-from-httpd" in logs()


def exec_out(docker_client: docker.DockerClient, status: dict, container: str, cmd: list[str]) -> str:
    cid = cstatus(status, container)["containerID"].removeprefix("docker://")
    res = docker_client.containers.get(cid).exec_run(cmd)
    return res.output.decode()


async def test_init_containers_run_in_order_before_app(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    m = pod_env.manager()
    pod = pod_env.pod(
        "init",
        [{"name": "app", "command": ["sleep", "3600"], "volumeMounts": [{"name": "w", "mountPath": "/w"}]}],
        initContainers=[
            {
                "name": "first",
                "command": ["sh", "-c", "sleep 0.5; echo first >> /w/order"],
                "volumeMounts": [{"name": "w", "mountPath": "/w"}],
            },
            {
                "name": "second",
                "command": ["sh", "-c", "echo second >> /w/order"],
                "volumeMounts": [{"name": "w", "mountPath": "/w"}],
            },
        ],
        volumes=[{"name": "w", "emptyDir": {}}],
    )
    await m.sync_pod(pod)
    first = pod_env.last("init")
    assert first["phase"] == "Pending"
    init_cond = next(c for c in first["conditions"] if c["type"] == "Initialized")
    assert init_cond["status"] == "False" and init_cond["reason"] == "ContainersNotInitialized"
    assert cstatus(first, "app")["state"] == {"waiting": {"reason": "PodInitializing"}} or cstatus(
        first, "app"
    )["state"]["waiting"]["reason"] in ("PodInitializing", "ContainerCreating")
    pod_env.run(m)
    st = await pod_env.wait("init", lambda s: s["phase"] == "Running")
    assert [c["state"]["terminated"]["reason"] for c in st["initContainerStatuses"]] == ["Completed"] * 2
    assert all(c["ready"] and not c["started"] for c in st["initContainerStatuses"])
    assert exec_out(docker_client, st, "app", ["cat", "/w/order"]) == "first\nsecond\n"
    assert next(c for c in st["conditions"] if c["type"] == "Initialized")["status"] == "True"


async def test_env_from_fields_configmaps_secrets_and_resources(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    pod_env.refs.put_configmap("default", "cfg", {"greeting": "hello", "COLOR": "blue"})
    pod_env.refs.put_secret("default", "sec", {"password": "s3cret"})
    m = pod_env.manager()
    pod = pod_env.pod(
        "env",
        [
            {
                "name": "app",
                "command": ["sleep", "3600"],
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CM_"}],
                "env": [
                    {"name": "PLAIN", "value": "x"},
                    {"name": "EXPANDED", "value": "$(PLAIN)-y-$$(PLAIN)"},
                    {
                        "name": "GREETING",
                        "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                    },
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {
                        "name": "MEM_MI",
                        "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
                    },
                    {
                        "name": "OPTIONAL",
                        "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}},
                    },
                ],
            }
        ],
    )
    await m.sync_pod(pod)
    st = await pod_env.wait("env", lambda s: s["phase"] == "Running")
    env = dict(
        line.split("=", 1) for line in exec_out(docker_client, st, "app", ["env"]).splitlines() if "=" in line
    )
    assert env["PLAIN"] == "x" and env["EXPANDED"] == "x-y-$(PLAIN)"
    assert env["GREETING"] == "hello" and env["PASSWORD"] == "s3cret"
    assert env["CM_COLOR"] == "blue" and env["CM_greeting"] == "hello"
    assert env["POD_NAME"] == "env" and env["POD_UID"] == pod["metadata"]["uid"]
    assert env["POD_IP"] == st["podIP"] and env["NODE"] == pod_env.node
    assert env["MEM_MI"] == "64" and "OPTIONAL" not in env
    host = docker_client.api.inspect_container(cstatus(st, "app")["containerID"][9:])["HostConfig"]
    assert host["Memory"] == 64 * 2**20 and host["NanoCpus"] == 500_000_000
    assert st["qosClass"] == "Guaranteed"


async def test_missing_configmap_key_is_a_waiting_reason(pod_env: PodEnv) -> None:
    m = pod_env.manager()
    pod = pod_env.pod(
        "badenv",
        [
            {
                "name": "app",
                "command": ["sleep", "3600"],
                "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}],
            }
        ],
    )
    await m.sync_pod(pod)
    st = pod_env.last("badenv")
    assert cstatus(st, "app")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
    assert "absent" in cstatus(st, "app")["state"]["waiting"]["message"]
    pod_env.refs.put_configmap("default", "absent", {"k": "v"})
    pod_env.run(m)
    await pod_env.wait("badenv", lambda s: s["phase"] == "Running")


async def test_configmap_volume_live_update_and_secret_mode(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    pod_env.refs.put_configmap("default", "cfg", {"greeting": "v1"})
    pod_env.refs.put_secret("default", "sec", {"key": "private"})
    pod_env.refs.put_configmap("default", "kube-root-ca.crt", {"ca.crt": "CA-PEM"})
    m = pod_env.manager()
    pod = pod_env.pod(
        "vols",
        [
            {
                "name": "app",
                "command": ["sleep", "3600"],
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/cfg"},
                    {"name": "sec", "mountPath": "/etc/sec"},
                    {
                        "name": "kube-api-access-x",
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                        "readOnly": True,
                    },
                    {"name": "info", "mountPath": "/etc/info"},
                ],
            }
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}},
            {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
            {
                "name": "info",
                "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
            },
            {
                "name": "kube-api-access-x",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                                ]
                            }
                        },
                    ],
                },
            },
        ],
    )
    await m.sync_pod(pod)
    st = await pod_env.wait("vols", lambda s: s["phase"] == "Running")

    def sh(cmd: str) -> str:
        return exec_out(docker_client, st, "app", ["sh", "-c", cmd])

    assert sh("cat /etc/cfg/greeting") == "v1"
    assert sh("stat -L -c %a /etc/sec/key") == "400\n" and sh("cat /etc/sec/key") == "private"
    assert sh("cat /etc/info/labels") == 'app="vols"'
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert sh(f"cat {sa}/token") == "token-default-default-vols"
    assert sh(f"cat {sa}/ca.crt") == "CA-PEM" and sh(f"cat {sa}/namespace") == "default"
    assert "Read-only file system" in sh("touch /etc/cfg/new 2>&1; true")  # kubelet mounts these ro
    pod_env.refs.put_configmap("default", "cfg", {"greeting": "v2"})
    pod_env.run(m)
    await m.refresh_volumes("default")
    await eventually_async(lambda: sh("cat /etc/cfg/greeting") == "v2", what="the configmap's new value")
    assert sh("cat /etc/cfg/greeting") == "v2"
    assert cstatus(pod_env.last("vols"), "app")["restartCount"] == 0


async def test_subpath_and_projected_items_with_modes(
    pod_env: PodEnv, docker_client: docker.DockerClient
) -> None:
    pod_env.refs.put_configmap("default", "app", {"app.conf": "a=1", "other": "x"})
    pod_env.refs.put_secret("default", "tls", {"tls.key": "KEY"})
    m = pod_env.manager()
    pod = pod_env.pod(
        "subpath",
        [
            {
                "name": "app",
                "command": ["sleep", "3600"],
                "resources": {"limits": {"memory": "32Mi"}},
                "volumeMounts": [
                    {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                    {"name": "all", "mountPath": "/etc/all"},
                ],
            }
        ],
        volumes=[
            {"name": "cfg", "configMap": {"name": "app"}},
            {
                "name": "all",
                "projected": {
                    "defaultMode": 0o644,
                    "sources": [
                        {
                            "secret": {
                                "name": "tls",
                                "items": [{"key": "tls.key", "path": "keys/tls.key", "mode": 0o600}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "mem",
                                        "resourceFieldRef": {
                                            "containerName": "app",
                                            "resource": "limits.memory",
                                            "divisor": "1Mi",
                                        },
                                    }
                                ]
                            }
                        },
                    ],
                },
            },
        ],
    )
    await m.sync_pod(pod)
    st = await pod_env.wait("subpath", lambda s: s["phase"] == "Running")
    assert exec_out(docker_client, st, "app", ["cat", "/etc/app.conf"]) == "a=1"
    assert exec_out(docker_client, st, "app", ["stat", "-L", "-c", "%a", "/etc/all/keys/tls.key"]) == "600\n"
    assert exec_out(docker_client, st, "app", ["cat", "/etc/all/keys/tls.key", "/etc/all/mem"]) == "KEY32"
