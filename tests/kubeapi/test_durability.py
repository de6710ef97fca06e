"""Restart durability of the embedded server: every acknowledged write survives kill -9 with its
resourceVersion. (Embedded only: a real cluster cannot be killed from here.)"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.fixtures.apiserver import http_client, start_apiserver
from tests.fixtures.procs import stop


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    if os.environ.get("KEDGE_TEST_KUBECONFIG"):
        pytest.skip("restart durability needs the embedded server (it kills and restarts it)")
    return tmp_path / "data"


def test_acknowledged_writes_survive_kill_9(data_dir: Path) -> None:
    s1 = start_apiserver(data_dir, in_memory=False)
    assert s1.proc is not None
    try:
        with http_client(s1) as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": "d"}}).status_code == 201
            acked: dict[str, str] = {}
            for i in range(200):
                r = c.post(
                    "/api/v1/namespaces/d/configmaps",
                    json={"metadata": {"name": f"cm{i}"}, "data": {"i": str(i)}},
                )
                assert r.status_code == 201
                acked[f"cm{i}"] = r.json()["metadata"]["resourceVersion"]
            for i in range(0, 200, 2):
                obj = c.get(f"/api/v1/namespaces/d/configmaps/cm{i}").json()
                obj["data"] = {"i": "updated"}
                r = c.put(f"/api/v1/namespaces/d/configmaps/cm{i}", json=obj)
                assert r.status_code == 200
                acked[f"cm{i}"] = r.json()["metadata"]["resourceVersion"]
            for i in range(0, 200, 10):
                assert c.delete(f"/api/v1/namespaces/d/configmaps/cm{i}").status_code == 200
                acked.pop(f"cm{i}")
            last_rv = int(c.get("/api/v1/namespaces/d/configmaps").json()["metadata"]["resourceVersion"])
    finally:
        os.killpg(s1.proc.pid, signal.SIGKILL)
        s1.proc.wait()
    s2 = start_apiserver(data_dir, in_memory=False)
    assert s2.proc is not None
    try:
        assert s2.token == s1.token  # same credentials across restarts
        with http_client(s2) as c:
            items = c.get("/api/v1/namespaces/d/configmaps").json()["items"]
            got = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}
            assert got == acked
            assert c.get("/api/v1/namespaces/d/configmaps/cm2").json()["data"] == {"i": "updated"}
            r = c.post("/api/v1/namespaces/d/configmaps", json={"metadata": {"name": "after"}})
            assert r.status_code == 201
            assert int(r.json()["metadata"]["resourceVersion"]) > last_rv
            names = {n["metadata"]["name"] for n in c.get("/api/v1/namespaces").json()["items"]}
            assert {"default", "kube-system", "kube-public", "kube-node-lease", "d"} <= names
    finally:
        stop(s2.proc)


def test_kubeconfig_is_private_and_names_the_bound_port(data_dir: Path) -> None:
    s = start_apiserver(data_dir)
    assert s.proc is not None
    try:
        assert (s.kubeconfig.stat().st_mode & 0o777) == 0o600
        assert not s.url.endswith(":0") and s.url.startswith("https://127.0.0.1:")
        with http_client(s) as c:
            assert c.get("/healthz").text == "ok"
    finally:
        stop(s.proc)
