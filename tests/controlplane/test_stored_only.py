"""Kinds the embedded control plane stores but does not run are flagged the Kubernetes way: a
`Warning: 299` response header, which kubectl prints, so nobody waits for a DaemonSet that never runs.
(Embedded-server behaviour: a real cluster runs these kinds and sends no such warning.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures import require
from tests.fixtures.apiserver import ApiServer, _external, start_apiserver
from tests.fixtures.procs import stop

DAEMONSET = {
    "apiVersion": "apps/v1",
    "kind": "DaemonSet",
    "metadata": {"name": "agent", "namespace": "default"},
    "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {"containers": [{"name": "c", "image": "kedge.local/busybox:1"}]},
        },
    },
}


def kubectl_apply(server: ApiServer, doc: dict[str, object]) -> subprocess.CompletedProcess[str]:
    require("kubectl")
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(server.kubeconfig), "apply", "-f", "-"],
        input=yaml.safe_dump(doc), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def test_stored_only_kind_is_kept_with_a_warning_kubectl_prints(tmp_path: Path) -> None:
    if _external() is not None:
        pytest.skip("a real cluster runs DaemonSets: it has nothing to warn about")
    server = start_apiserver(tmp_path / "apiserver", "--controllers")
    try:
        out = kubectl_apply(server, DAEMONSET)
    finally:
        assert server.proc is not None
        stop(server.proc)
    assert "daemonset.apps/agent created" in out.stdout
    assert "Warning: stored only: no DaemonSet controller in the embedded control plane" in out.stderr


def test_bare_server_warns_about_nothing(apiserver: ApiServer) -> None:
    """Without the control plane nothing runs, DaemonSets no less than Deployments: a bare server
    answers as a bare kube-apiserver does (the recorded 1.28.7 sends no warning)."""
    if not apiserver.embedded:
        pytest.skip("the bare embedded server is what this is about")
    out = kubectl_apply(apiserver, DAEMONSET)
    assert "daemonset.apps/agent created" in out.stdout
    assert "Warning" not in out.stderr


def test_kinds_the_control_plane_runs_get_no_warning(apiserver: ApiServer) -> None:
    doc = {**DAEMONSET, "kind": "Deployment", "spec": {**DAEMONSET["spec"], "replicas": 0}}  # type: ignore[dict-item]
    out = kubectl_apply(apiserver, doc)
    assert "deployment.apps/agent created" in out.stdout
    assert "Warning" not in out.stderr
