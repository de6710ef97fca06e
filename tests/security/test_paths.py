"""Path traversal in volume names, subPath and hostPath: the API server refuses it as kube-apiserver does
(422, the field named), and the edge refuses a subPath that resolves outside its volume — through ".." or
a symlink a container left there (CVE-2017-1002101's shape) — before Docker ever sees the bind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.edge.pods.refs import RefMissing
from runtime.edge.pods.translate import container_config
from runtime.edge.pods.volumes import Volume
from tests.fixtures.apiserver import ApiServer
from tests.kubeapi.conftest import Kube


@pytest.fixture(scope="module")
def api(apiserver_session: ApiServer) -> Iterator[Kube]:
    k = Kube(apiserver_session)
    yield k
    k.close()


def pod(volume: dict[str, Any], mount: dict[str, Any]) -> dict[str, Any]:
    name = f"p-{uuid.uuid4().hex[:8]}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "volumes": [volume],
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"mountPath": "/m", **mount}]}],
        },
    }


EMPTY = {"name": "v", "emptyDir": {}}
CASES = [
    ("subpath-dotdot", EMPTY, {"name": "v", "subPath": "../../etc"}, "volumeMounts[0].subPath",
     "must not contain '..'"),
    ("subpath-inner-dotdot", EMPTY, {"name": "v", "subPath": "a/../../b"}, "volumeMounts[0].subPath",
     "must not contain '..'"),
    ("subpath-absolute", EMPTY, {"name": "v", "subPath": "/etc/shadow"}, "volumeMounts[0].subPath",
     "must be a relative path"),
    ("hostpath-dotdot", {"name": "v", "hostPath": {"path": "/var/lib/../../etc"}}, {"name": "v"},
     "volumes[0].hostPath.path", "must not contain '..'"),
    ("volume-name", {"name": "../v", "emptyDir": {}}, {"name": "../v"}, "volumes[0].name",
     "a lowercase RFC 1123 label"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("volume", "mount", "field", "why"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_apiserver_refuses_traversal_then_serves(
    api: Kube, volume: dict[str, Any], mount: dict[str, Any], field: str, why: str
) -> None:
    r = api.post("/api/v1/namespaces/default/pods", pod(volume, mount))
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid" and why in status["message"], status["message"]
    assert any(c["field"].endswith(field) for c in status["details"]["causes"]), status["details"]
    ok = api.post("/api/v1/namespaces/default/pods", pod(EMPTY, {"name": "v", "subPath": "a/b..c/d"}))
    assert ok.status_code == 201, ok.text  # the server is healthy and ".." only as a whole element counts
    api.delete(f"/api/v1/namespaces/default/pods/{ok.json()['metadata']['name']}")


def _config(volume_dir: Path, sub: str) -> dict[str, Any]:
    p = pod(EMPTY, {"name": "v", "subPath": sub})
    p["metadata"].update(namespace="default", uid="u-1")
    _, _, host = container_config(
        p,
        p["spec"]["containers"][0],
        kind="app",
        node="n",
        restarts=0,
        env={},
        volumes={"v": Volume("bind", str(volume_dir))},
        sandbox_id=None,
    )
    return host


def test_edge_refuses_a_subpath_outside_its_volume(tmp_path: Path) -> None:
    vol = tmp_path / "volume"
    (vol / "inside").mkdir(parents=True)
    secret = tmp_path / "host-secret"
    secret.mkdir()
    (vol / "escape").symlink_to(secret)  # what a container could leave in an emptyDir
    (vol / "fine").symlink_to("inside")
    for sub in ("../host-secret", "escape", "escape/x", "/etc", "inside/../../host-secret"):
        with pytest.raises(RefMissing, match="outside the volume"):
            _config(vol, sub)
    assert _config(vol, "inside/x")["binds"] == [f"{vol.resolve()}/inside/x:/m:rw"]
    assert _config(vol, "fine")["binds"] == [f"{vol.resolve()}/inside:/m:rw"]
