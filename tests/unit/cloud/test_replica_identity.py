"""The cloud's replica identity: stable across restarts under one root, distinct between roots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.cloud.controllers.replicas import PREFIX, default_identity


def identity_in_new_process(root: Path) -> str:
    code = (
        "import sys; from pathlib import Path\n"
        "from runtime.cloud.controllers.replicas import default_identity"
        "; print(default_identity(Path(sys.argv[1])))"
    )
    env = {k: v for k, v in os.environ.items() if k != "KEDGE_REPLICA_ID"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def test_a_restarted_process_has_its_predecessors_identity(tmp_path: Path) -> None:
    first, second = identity_in_new_process(tmp_path / "a"), identity_in_new_process(tmp_path / "a")
    assert first == second and first


def test_two_roots_on_one_host_have_distinct_identities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEDGE_REPLICA_ID", raising=False)
    a, b = default_identity(tmp_path / "a"), default_identity(tmp_path / "b")
    assert a != b
    monkeypatch.setattr("socket.gethostname", lambda: "h" * 80)  # a long hostname keeps the root's part
    long_a, long_b = default_identity(tmp_path / "a"), default_identity(tmp_path / "b")
    assert long_a != long_b and len(PREFIX + long_a) <= 63


def test_the_environment_names_the_replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEDGE_REPLICA_ID", "Pod_Name.1")
    assert default_identity(tmp_path) == "pod-name-1"
