"""Bad requests get Status answers, never a crash; SIGTERM stops the server promptly."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.apiserver import start_apiserver
from tests.kubeapi.conftest import Kube, configmap


def test_wrong_verbs_are_405(kube: Kube, ns: str) -> None:
    r = kube.put(f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    r = kube.post(f"/api/v1/namespaces/{ns}/configmaps/a", configmap("a"))
    assert r.status_code == 405
    r = kube.delete("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x")
    assert r.status_code in (404, 405)


def test_unsupported_patch_type_is_415(kube: Kube, ns: str) -> None:
    kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("a"))
    r = kube.patch(f"/api/v1/namespaces/{ns}/configmaps/a", {"data": {}}, "text/plain")
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"


def test_garbage_never_breaks_the_server(kube: Kube, ns: str) -> None:
    bodies: list[bytes] = [
        b"",
        b"[]",
        b"null",
        b"42",
        b'"x"',
        b"{",
        b"\xff\xfe\x00",
        b'{"metadata": 5}',
        b'{"metadata": {"name": ["x"]}}',
        b'{"metadata": {"labels": {"a": 1}}}',
        b'{"apiVersion": 7, "kind": {}}',
    ]
    paths = [
        f"/api/v1/namespaces/{ns}/configmaps",
        f"/api/v1/namespaces/{ns}/pods",
        "/apis/apps/v1/namespaces/default/deployments",
        "/api/v1/nodes",
    ]
    for path in paths:
        for body in bodies:
            for method, ctype in (
                ("POST", "application/json"),
                ("PUT", "application/json"),
                ("PATCH", "application/merge-patch+json"),
                ("PATCH", "application/json-patch+json"),
                ("PATCH", "application/strategic-merge-patch+json"),
                ("PATCH", "application/apply-patch+yaml"),
            ):
                target = path if method == "POST" else f"{path}/x"
                r = kube.request(method, target, body, ctype=ctype, params={"fieldManager": "t"})
                assert 400 <= r.status_code < 500, (method, target, body, r.status_code, r.text)
                assert r.json()["kind"] == "Status"
    assert kube.get("/healthz").text == "ok"


def test_sigterm_stops_promptly_with_open_watches(tmp_path: Path) -> None:
    if os.environ.get("KEDGE_TEST_KUBECONFIG"):
        pytest.skip("stops the server it started; needs the embedded server")
    s = start_apiserver(tmp_path / "d")
    assert s.proc is not None
    ctx = ssl.create_default_context(cafile=str(s.ca_file))
    clients = []
    try:
        for _ in range(3):
            c = httpx.Client(
                base_url=s.url,
                verify=ctx,
                headers={"Authorization": f"Bearer {s.token}"},
                timeout=httpx.Timeout(10, read=None),
            )
            stream = c.stream("GET", "/api/v1/configmaps", params={"watch": "1"})
            stream.__enter__()
            clients.append((c, stream))
        time.sleep(0.3)
        start = time.monotonic()
        os.killpg(s.proc.pid, signal.SIGTERM)
        code = s.proc.wait(timeout=15)
        assert code == 0, s.log.read_text() if s.log else ""
        assert time.monotonic() - start < 10
    finally:
        if s.proc.poll() is None:
            os.killpg(s.proc.pid, signal.SIGKILL)
            s.proc.wait()
        for c, _ in clients:
            c.close()


def test_kedge_apiserver_prints_its_kubeconfig_path(tmp_path: Path) -> None:
    if os.environ.get("KEDGE_TEST_KUBECONFIG"):
        pytest.skip("runs the embedded server")
    from tests.fixtures.procs import KEDGE

    out = tmp_path / "out.kubeconfig"
    proc = subprocess.Popen(
        [
            *KEDGE,
            "apiserver",
            "--data-dir",
            str(tmp_path / "d"),
            "--port",
            "0",
            "--in-memory",
            "--kubeconfig-out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line == str(out)
        assert out.exists() and (out.stat().st_mode & 0o777) == 0o600
        assert (tmp_path / "d" / "admin.kubeconfig").read_text() == out.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def test_malformed_nested_fields_are_client_errors(kube: Kube, ns: str) -> None:
    bad: list[object] = [
        5,
        "x",
        [],
        True,
        [{"name": 5}],
        [{"name": "c", "image": "i", "env": 5}],
        [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "abc"}}}],
    ]
    n = 0
    for path, base, field in (
        (f"/api/v1/namespaces/{ns}/pods", {"spec": {"containers": [{"name": "c", "image": "i"}]}}, ("spec",)),
        (f"/api/v1/namespaces/{ns}/pods", {"spec": {}}, ("spec", "containers")),
        (
            f"/apis/apps/v1/namespaces/{ns}/deployments",
            {"spec": {"selector": {"matchLabels": {"a": "b"}}}},
            ("spec", "template"),
        ),
        (f"/api/v1/namespaces/{ns}/services", {"spec": {}}, ("spec", "ports")),
    ):
        for v in bad:
            n += 1
            obj: dict = {"metadata": {"name": f"f{n}"}, **base}  # type: ignore[type-arg]
            cur = obj
            for p in field[:-1]:
                cur = cur.setdefault(p, {})
            cur[field[-1]] = v
            r = kube.post(path, obj)
            assert r.status_code < 500, (path, field, v, r.text)
            assert r.status_code in (201, 400, 422), (path, field, v, r.text)


def test_pod_spec_fields_are_decoded_as_their_types(kube: Kube, ns: str) -> None:
    base = {"containers": [{"name": "c", "image": "i"}]}
    for i, (field, value) in enumerate(
        [
            ("nodeSelector", 5),
            ("nodeSelector", {"a": 1}),
            ("tolerations", "x"),
            ("restartPolicy", 5),
            ("hostNetwork", "yes"),
            ("containers", [{"name": "c", "image": "i", "command": "sh"}]),
            ("containers", [{"name": "c", "image": "i", "ports": [{"containerPort": "80"}]}]),
        ]
    ):
        r = kube.post(
            f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": f"p{i}"}, "spec": {**base, field: value}}
        )
        assert r.status_code == 400, (field, value, r.text)
        assert r.json()["reason"] == "BadRequest"
    d = {
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {**base, "nodeSelector": 5}},
        },
    }
    assert kube.post(f"/apis/apps/v1/namespaces/{ns}/deployments", d).status_code == 400
