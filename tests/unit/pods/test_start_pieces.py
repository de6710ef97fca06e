"""Pure pieces of the fast start path: never-started containers, the sandbox's seccomp, pod-IP env."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.edge.pods import labels, observe, translate
from runtime.edge.pods.envs import needs_pod_ip
from runtime.edge.pods.refs import RefMissing


def info(cid: str, restarts: int, status: str, exit_code: int = 0) -> dict[str, Any]:
    return {
        "Id": cid,
        "Image": "sha256:x",
        "Config": {"Labels": {labels.RESTARTS: str(restarts), labels.CONTAINER: "app"}},
        "State": {
            "Status": status,
            "Running": status == "running",
            "ExitCode": exit_code,
            "StartedAt": "0001-01-01T00:00:00Z" if status == "created" else "2026-01-01T00:00:00.5Z",
            "FinishedAt": "2026-01-01T00:00:09Z" if status == "exited" else "0001-01-01T00:00:00Z",
        },
    }


def test_a_never_started_container_is_waiting_not_terminated() -> None:
    fresh = observe.container("app", "img", [info("c1", 0, "created")])
    assert fresh.container_id == "" and fresh.terminated is None and fresh.running_since is None
    assert fresh.restart_count == 0 and fresh.last is None
    # a restart created but not started yet: the exited instance is lastState, its count stays
    again = observe.container("app", "img", [info("c2", 3, "created"), info("c1", 2, "exited", 1)])
    assert again.container_id == "" and again.terminated is None and again.restart_count == 2
    assert again.last is not None and again.last.exit_code == 1 and again.last.container_id == "docker://c1"
    assert observe.container("app", "img", [info("c1", 0, "exited", 1)]).terminated is not None


def test_sandbox_runs_unconfined_unless_the_pod_asks_for_a_profile() -> None:
    def opts(**spec: Any) -> Any:
        pod = {"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": [], **spec}}
        return translate.sandbox_config(pod, "n", 0)[2].get("security_opt")

    assert opts() == ["seccomp=unconfined"]
    assert opts(securityContext={"seccompProfile": {"type": "Unconfined"}}) == ["seccomp=unconfined"]
    assert opts(securityContext={"seccompProfile": {"type": "RuntimeDefault"}}) is None


def test_container_seccomp_profile_overrides_the_pods(tmp_path: Any, monkeypatch: Any) -> None:
    runtime_default = {"seccompProfile": {"type": "RuntimeDefault"}}
    assert translate.seccomp_opts(None, None) == ["seccomp=unconfined"]
    assert translate.seccomp_opts(None, runtime_default) == []
    assert translate.seccomp_opts({"seccompProfile": {"type": "Unconfined"}}, runtime_default) == [
        "seccomp=unconfined"
    ]
    monkeypatch.setattr(translate, "SECCOMP_DIR", tmp_path)
    (tmp_path / "p.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    local = {"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}
    assert translate.seccomp_opts(local) == ['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']
    with pytest.raises(RefMissing, match=r"missing\.json"):
        translate.seccomp_opts({"seccompProfile": {"type": "Localhost", "localhostProfile": "missing.json"}})


def test_env_naming_the_pod_ip() -> None:
    def env(path: str) -> dict[str, Any]:
        return {
            "env": [
                {"name": "X", "value": "1"},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": path}}},
            ]
        }

    assert needs_pod_ip(env("status.podIP")) and needs_pod_ip(env("status.podIPs"))
    assert not needs_pod_ip(env("status.hostIP")) and not needs_pod_ip({"name": "c"})
