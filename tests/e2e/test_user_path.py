"""The user path, end to end on one machine: init --embedded → token → join → kubectl → Docker.

Every step is a real subprocess (the kedge CLI under test, kubectl), pods run on the real Docker
engine. One cloud + edge per module (tests/fixtures/e2e.py); each test makes its own objects and
leaves the cloud and edge running and connected for the next.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.e2e import E2E
from tests.fixtures.wait import eventually

IMAGE = "kedge.local/busybox:1"


def deployment(name: str, replicas: int, volumes: bool = False) -> str:
    pod: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"]}],
    }
    doc = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": pod}},
    }  # fmt: skip
    return json.dumps(doc)


def running_pods(e2e: E2E, app: str, n: int) -> list[dict[str, Any]] | None:
    """The app's pods when exactly `n` are Running and Ready on the edge node, else None."""
    pods = e2e.cloud.get("pods", "-l", f"app={app}")["items"]
    ok = [
        p for p in pods
        if p["status"].get("phase") == "Running" and p["spec"].get("nodeName") == e2e.edge.node
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]  # fmt: skip
    return ok if len(ok) == n == len(pods) else None


def app_containers(e2e: E2E, app_pods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    uids = {p["metadata"]["uid"] for p in app_pods}
    return {
        cid: c for cid, c in e2e.edge.containers(container_kind="app").items()
        if c["labels"].get("io.kedge.pod.uid") in uids
    }  # fmt: skip


def pod_containers(e2e: E2E, pods: list[dict[str, Any]]) -> dict[str, str]:
    """Container id → start time of every container (sandbox and app) of `pods`."""
    uids = {p["metadata"]["uid"] for p in pods}
    return {
        cid: c["started"] for cid, c in e2e.edge.containers().items()
        if c["labels"].get("io.kedge.pod.uid") in uids and c["running"]
    }  # fmt: skip


def test_join_registers_a_ready_node(e2e: E2E) -> None:
    assert "kedge join" in e2e.init_output and e2e.cloud.server in e2e.init_output
    assert f"node {e2e.edge.node} joined" in e2e.join_output
    node = e2e.cloud.get("node", e2e.edge.node)
    conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conds["Ready"] == "True"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == e2e.edge.node
    assert "node-role.kubernetes.io/edge" in node["metadata"]["labels"]
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("docker://")
    table = e2e.cloud.kubectl("get", "nodes")
    assert any(line.split()[:2] == [e2e.edge.node, "Ready"] for line in table.splitlines())
    rc, status = e2e.edge.status()
    assert rc == 0 and status["edge"]["healthy"] and status["edge"]["cloud"]["connected"]
    assert status["edge"]["node"]["name"] == e2e.edge.node


def test_registration_records_the_node_key_and_a_token_cannot_take_the_name(e2e: E2E) -> None:
    """design.md §4: a token is no licence to take over a node whose key was recorded at first join."""
    from runtime.edge.certclient import CertServer, pem_of
    from runtime.edge.layout import EdgeFiles
    from runtime.errors import AuthError
    from runtime.pki import ANN_KEY_HASH, certs, tokens

    files = EdgeFiles.of(e2e.edge.root)
    node = e2e.cloud.get("node", e2e.edge.node)
    edge_key = certs.key_hash(certs.load_cert(files.cert.read_bytes()))
    assert node["metadata"]["annotations"][ANN_KEY_HASH] == edge_key
    jwt = tokens.split_token(e2e.cloud.token())[1]
    ca_der = CertServer("127.0.0.1", e2e.cloud.cert_port).fetch_ca()
    server = CertServer("127.0.0.1", e2e.cloud.cert_port, ca_pem=pem_of(ca_der))
    with pytest.raises(AuthError, match="taken"):
        server.request_certificate(e2e.edge.node, certs.make_csr(certs.new_key(), e2e.edge.node), jwt=jwt)


def test_deployment_runs_in_docker_and_is_running_in_kubectl(e2e: E2E) -> None:
    e2e.cloud.kubectl("apply", "-f", "-", stdin=deployment("web", 2))
    pods = eventually(lambda: running_pods(e2e, "web", 2), 90, "2 web pods Running/Ready on the edge")
    ctrs = app_containers(e2e, pods)
    assert len(ctrs) == 2 and all(c["running"] for c in ctrs.values())
    for p in pods:  # the API's containerID is the Docker container that runs
        cid = p["status"]["containerStatuses"][0]["containerID"]
        assert cid.startswith("docker://") and cid.removeprefix("docker://") in ctrs
        assert p["status"]["podIP"] and p["status"]["hostIP"]
    wide = e2e.cloud.kubectl("get", "pods", "-l", "app=web", "-o", "wide")
    assert wide.count("Running") == 2 and wide.count(e2e.edge.node) == 2
    e2e.cloud.kubectl("delete", "deployment", "web", "--wait=false")


def test_configmap_update_reaches_the_volume_and_token_is_mounted(e2e: E2E) -> None:
    cloud, edge = e2e.cloud, e2e.edge
    cloud.kubectl("create", "configmap", "cfg", "--from-literal=greeting=hello")
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cm", "labels": {"app": "cm"}},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"],
                                 "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
                 "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]},
    }  # fmt: skip
    cloud.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    pods = eventually(lambda: running_pods(e2e, "cm", 1), 60, "pod cm Running")
    (cid,) = app_containers(e2e, pods)
    ctr = edge.docker.containers.get(cid)

    def cat(path: str) -> str:
        res = ctr.exec_run(["cat", path])
        return str(res.output.decode()) if res.exit_code == 0 else ""

    assert cat("/cfg/greeting") == "hello"
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert cat(f"{sa}/namespace") == "default"
    assert cat(f"{sa}/token").count(".") == 2  # a JWT from the cloud's TokenRequest
    assert "BEGIN CERTIFICATE" in cat(f"{sa}/ca.crt")
    cloud.kubectl("patch", "configmap", "cfg", "-p", '{"data":{"greeting":"world"}}')
    eventually(lambda: cat("/cfg/greeting") == "world", 60, "the configmap update in /cfg/greeting")
    cloud.kubectl("delete", "pod", "cm", "--wait=false")
    cloud.kubectl("delete", "configmap", "cfg")


def test_delete_removes_the_containers_and_the_pods(e2e: E2E) -> None:
    e2e.cloud.kubectl("apply", "-f", "-", stdin=deployment("gone", 2))
    pods = eventually(lambda: running_pods(e2e, "gone", 2), 90, "2 gone pods Running")
    assert len(app_containers(e2e, pods)) == 2
    uids = {p["metadata"]["uid"] for p in pods}
    e2e.cloud.kubectl("delete", "deployment", "gone")
    eventually(
        lambda: not e2e.cloud.get("pods", "-l", "app=gone")["items"], 60, "the pods removed from the API"
    )

    def leftovers() -> list[str]:
        ctrs = e2e.edge.containers().items()
        return [cid for cid, c in ctrs if c["labels"].get("io.kedge.pod.uid") in uids]

    eventually(lambda: not leftovers(), 30, "every container of the deleted pods removed from Docker")


def test_kill9_of_the_edge_runtime_keeps_the_containers(e2e: E2E) -> None:
    edge = e2e.edge
    e2e.cloud.kubectl("apply", "-f", "-", stdin=deployment("keep", 2))
    pods = eventually(lambda: running_pods(e2e, "keep", 2), 90, "2 keep pods Running")
    before = pod_containers(e2e, pods)
    assert len(before) == 4  # 2 sandboxes + 2 app containers
    old = edge.kill9()
    assert pod_containers(e2e, pods) == before
    out = edge.join(e2e.cloud.token())  # re-running join converges: restarts the runtime
    assert edge.pid() != old
    eventually(edge.connected, 30, "the restarted edge connected")
    assert pod_containers(e2e, pods) == before  # adopted, not restarted
    assert "reused" in out.stderr + out.stdout
    after = eventually(lambda: running_pods(e2e, "keep", 2), 30, "keep pods still Running")
    assert {p["metadata"]["uid"] for p in after} == {p["metadata"]["uid"] for p in pods}
    assert all(cs["restartCount"] == 0 for p in after for cs in p["status"]["containerStatuses"])
    e2e.cloud.kubectl("delete", "deployment", "keep", "--wait=false")


@pytest.mark.timeout(400)
def test_offline_edge_keeps_pods_and_reconnect_restarts_nothing(e2e: E2E) -> None:
    cloud, edge = e2e.cloud, e2e.edge
    cloud.kubectl("apply", "-f", "-", stdin=deployment("auto", 2))
    pods = eventually(lambda: running_pods(e2e, "auto", 2), 90, "2 auto pods Running")
    started = pod_containers(e2e, pods)
    assert len(started) == 4

    cloud.stop_cloud()
    edge.stop()
    edge.run_detached()  # restarted while the cloud is away: from the cache
    rc, status = eventually(lambda: (lambda s: s if s[1]["edge"]["running"] else None)(edge.status()), 20,
                       "kedge status of the restarted runtime")  # fmt: skip
    assert rc != 0, "kedge status must exit non-zero while the cloud link is down"
    assert status["edge"]["cloud"]["connected"] is False and status["edge"]["healthy"] is False
    names = {p["metadata"]["name"] for p in pods}
    local = {p["name"]: p["phase"] for p in status["edge"]["pods"] if p["name"] in names}
    assert local == dict.fromkeys(names, "Running"), status["edge"]["pods"]  # served from the edge
    assert pod_containers(e2e, pods) == started

    # the API server is still up: changes made while the edge is cut off (a scale-up, a pod deleted)
    cloud.kubectl("scale", "deployment", "auto", "--replicas=3")
    gone, kept = pods
    cloud.kubectl("delete", "pod", gone["metadata"]["name"], "--wait=false")
    assert pod_containers(e2e, [gone]), "the edge is offline: nothing can have removed the containers yet"
    out = cloud.init("--no-token")  # the user brings the cloud back by re-running init
    assert "kedge cloud run pid" in out.stderr + out.stdout
    eventually(edge.connected, 60, "the edge reconnected to the restarted cloud")
    pods3 = eventually(
        lambda: running_pods(e2e, "auto", 3), 90, "3 auto pods Running (scaled up, deleted one replaced)"
    )
    assert gone["metadata"]["uid"] not in {p["metadata"]["uid"] for p in pods3}
    assert len(app_containers(e2e, pods3)) == 3
    eventually(
        lambda: not pod_containers(e2e, [gone]), 30, "the containers of the pod deleted while offline removed"
    )
    kept_ctrs = {cid: t for cid, t in started.items() if cid in pod_containers(e2e, [kept])}
    assert len(kept_ctrs) == 2 and pod_containers(e2e, [kept]) == kept_ctrs, "an unchanged pod was restarted"
    cloud.kubectl("delete", "deployment", "auto", "--wait=false")


def test_init_container_host_network_and_readiness_probe(e2e: E2E) -> None:
    cloud, edge = e2e.cloud, e2e.edge
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "shapes", "labels": {"app": "shapes"}},
        "spec": {
            "terminationGracePeriodSeconds": 1, "hostNetwork": True,
            "initContainers": [{"name": "init", "image": IMAGE,
                                "command": ["sh", "-c", "echo from-init > /work/msg"],
                                "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
            "containers": [{"name": "app", "image": IMAGE, "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                            "readinessProbe": {"exec": {"command": ["test", "-f", "/work/ready"]},
                                               "periodSeconds": 1}}],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    }  # fmt: skip
    cloud.kubectl("apply", "-f", "-", stdin=json.dumps(pod))

    def phase_running_not_ready() -> dict[str, Any] | None:
        p = cloud.get("pod", "shapes")
        st = p["status"]
        conds = {c["type"]: c["status"] for c in st.get("conditions", [])}
        return p if st.get("phase") == "Running" and conds.get("Ready") == "False" else None

    p = eventually(phase_running_not_ready, 60, "pod shapes Running but not Ready (probe failing)")
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    (cid,) = app_containers(e2e, [p])
    ctr = edge.docker.containers.get(cid)
    assert ctr.attrs["HostConfig"]["NetworkMode"] == "host"
    assert ctr.exec_run(["cat", "/work/msg"]).output.decode().strip() == "from-init"
    assert ctr.exec_run(["touch", "/work/ready"]).exit_code == 0
    eventually(lambda: running_pods(e2e, "shapes", 1), 30, "pod shapes Ready once the probe passes")
    cloud.kubectl("delete", "pod", "shapes", "--wait=false")
