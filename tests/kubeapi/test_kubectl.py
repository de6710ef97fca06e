"""kubectl 1.32 as a real client: create, apply (client- and server-side), get, patch, label, wait."""

from __future__ import annotations

import json
import threading
import time

from tests.fixtures.wait import eventually
from tests.kubeapi.clientversion import minor, show_managed_fields
from tests.kubeapi.conftest import Kube, Kubectl

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {app: p}
spec:
  containers:
  - name: a
    image: busybox:1.36
  - name: b
    image: busybox:1.36
"""


def cm(name: str, **data: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


def test_create_get_and_apply_roundtrip(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("-n", ns, "create", "-f", "-", input=DEPLOY).stdout
    assert "deployment.apps/web created" in out
    d = kubectl.json("-n", ns, "get", "deployment", "web")
    assert d["spec"]["replicas"] == 2 and d["metadata"]["generation"] == 1
    changed = DEPLOY.replace("replicas: 2", "replicas: 3").replace(
        '{name: B, value: "2"}', '{name: B, value: "9"}'
    )
    out = kubectl("-n", ns, "apply", "-f", "-", input=changed).stdout
    assert "deployment.apps/web configured" in out
    d = kubectl.json("-n", ns, "get", "deployment", "web")
    assert d["spec"]["replicas"] == 3 and d["metadata"]["generation"] == 2
    env = d["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "9"}]
    out = kubectl("-n", ns, "apply", "-f", "-", input=changed).stdout
    assert "deployment.apps/web unchanged" in out


def test_apply_creates_then_removes_a_field_dropped_from_the_manifest(kubectl: Kubectl, ns: str) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: '1'\n  b: '2'\n"
    assert "configmap/c created" in kubectl("-n", ns, "apply", "-f", "-", input=cm).stdout
    kubectl("-n", ns, "apply", "-f", "-", input=cm.replace("  b: '2'\n", ""))
    assert kubectl.json("-n", ns, "get", "cm", "c")["data"] == {"a": "1"}


def test_server_side_apply(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=DEPLOY).stdout
    assert "serverside-applied" in out
    d = kubectl.json("-n", ns, "get", "deployment", "web", *show_managed_fields(kubectl))
    managers = {(m["manager"], m["operation"]) for m in d["metadata"].get("managedFields", [])}
    assert ("kubectl", "Apply") in managers
    kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=DEPLOY.replace("replicas: 2", "replicas: 4"))
    assert kubectl.json("-n", ns, "get", "deployment", "web")["spec"]["replicas"] == 4
    other = DEPLOY.replace("replicas: 2", "replicas: 5")
    as_other = ("-n", ns, "apply", "--server-side", "--field-manager=other")
    res = kubectl(*as_other, "-f", "-", input=other, check=False)
    assert res.returncode != 0 and "conflict" in res.stderr.lower()
    kubectl(*as_other, "--force-conflicts", "-f", "-", input=other)
    assert kubectl.json("-n", ns, "get", "deployment", "web")["spec"]["replicas"] == 5


def test_patch_types(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", input=POD)
    patch = ("-n", ns, "patch", "pod", "p")
    kubectl(
        *patch,
        "--type=strategic",
        "-p",
        json.dumps({"spec": {"containers": [{"name": "b", "image": "busybox:1.37"}]}}),
    )
    p = kubectl.json("-n", ns, "get", "pod", "p")
    assert [(c["name"], c["image"]) for c in p["spec"]["containers"]] == [
        ("a", "busybox:1.36"),
        ("b", "busybox:1.37"),
    ]
    kubectl(*patch, "--type=merge", "-p", '{"metadata":{"labels":{"x":"y"}}}')
    assert kubectl.json("-n", ns, "get", "pod", "p")["metadata"]["labels"] == {"app": "p", "x": "y"}
    kubectl(*patch, "--type=json", "-p", '[{"op":"remove","path":"/metadata/labels/x"}]')
    assert kubectl.json("-n", ns, "get", "pod", "p")["metadata"]["labels"] == {"app": "p"}


def test_label_annotate_and_selectors(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", input=cm("one", k="v"))
    kubectl("-n", ns, "create", "-f", "-", input=cm("two"))
    kubectl("-n", ns, "label", "configmap", "one", "tier=gold")
    kubectl("-n", ns, "annotate", "configmap", "one", "note=hello")
    one = kubectl.json("-n", ns, "get", "cm", "one")
    assert one["metadata"]["labels"] == {"tier": "gold"}
    assert one["metadata"]["annotations"]["note"] == "hello"
    names = kubectl("-n", ns, "get", "cm", "-l", "tier=gold", "-o", "name").stdout.split()
    assert names == ["configmap/one"]
    res = kubectl("-n", ns, "label", "configmap", "one", "tier=silver", check=False)
    assert res.returncode != 0 and "already has a value" in res.stderr
    kubectl("-n", ns, "label", "configmap", "one", "tier-")
    assert (
        "labels" not in kubectl.json("-n", ns, "get", "cm", "one")["metadata"]
        or not kubectl.json("-n", ns, "get", "cm", "one")["metadata"]["labels"]
    )


def test_get_prints_table_columns(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", input=POD)
    out = kubectl("-n", ns, "get", "pods").stdout
    header = out.splitlines()[0].split()
    assert header[:3] == ["NAME", "READY", "STATUS"]
    assert "p" in out.split()
    assert "NAME" in kubectl("get", "namespaces").stdout


def test_get_missing_reports_not_found(kubectl: Kubectl, ns: str) -> None:
    res = kubectl("-n", ns, "get", "cm", "nope", check=False)
    assert res.returncode == 1
    assert 'configmaps "nope" not found' in res.stderr


def test_delete_and_wait_for_delete(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", input=cm("gone"))
    kubectl(
        "-n", ns, "patch", "cm", "gone", "--type=merge", "-p", '{"metadata":{"finalizers":["example.com/x"]}}'
    )
    kubectl("-n", ns, "delete", "cm", "gone", "--wait=false")
    waiter = kubectl.popen("-n", ns, "wait", "--for=delete", "cm/gone", "--timeout=30s")
    time.sleep(1.0)  # the thing under test: the waiter keeps waiting
    assert waiter.poll() is None  # still held by the finalizer
    kubectl(
        "-n",
        ns,
        "patch",
        "cm",
        "gone",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert "condition met" in out


def test_get_watch_streams_changes(kubectl: Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "-f", "-", input=cm("w0"))
    proc = kubectl.popen("-n", ns, "get", "cm", "-w", "-o", "name", "--request-timeout=0")
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:  # the list is printed first; the watch goes on from its resourceVersion
        eventually(lambda: "configmap/w0" in lines, 30, "the listed configmap")
        kubectl("-n", ns, "create", "-f", "-", input=cm("w1"))
        kubectl("-n", ns, "create", "-f", "-", input=cm("w2"))
        eventually(lambda: "configmap/w2" in lines, 30, "the watched configmaps")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(10)
    assert "configmap/w1" in lines and "configmap/w2" in lines


def test_typed_client_commands_send_protobuf_and_work(kube: Kube, kubectl: Kubectl, ns: str) -> None:
    """kubectl's generators and auth commands post protobuf bodies (`create token` is 1.24+: older
    clients get the same TokenRequest through the API)."""
    kubectl("-n", ns, "create", "configmap", "g1", "--from-literal=k=v")
    assert kubectl.json("-n", ns, "get", "cm", "g1")["data"] == {"k": "v"}
    kubectl("-n", ns, "create", "secret", "generic", "s1", "--from-literal=a=b")
    assert kubectl.json("-n", ns, "get", "secret", "s1")["data"] == {"a": "Yg=="}
    kubectl("-n", ns, "create", "serviceaccount", "robot")
    if minor(kubectl) >= 24:
        token = kubectl(
            "-n", ns, "create", "token", "robot", "--audience=x", "--duration=3607s"
        ).stdout.strip()
    else:
        req = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
        req["spec"] = {"audiences": ["x"], "expirationSeconds": 3607}
        r = kube.post(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", req)
        assert r.status_code == 201, r.text
        token = r.json()["status"]["token"]
    assert token.count(".") == 2
    kubectl("-n", ns, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=2")
    d = kubectl.json("-n", ns, "get", "deployment", "web")
    assert (
        d["spec"]["replicas"] == 2 and d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    )
    assert kubectl("auth", "can-i", "create", "pods", "-n", ns).stdout.strip() == "yes"
