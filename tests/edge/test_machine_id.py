"""The Node's machineID on a host without /etc/machine-id (a bare container, a minimal rootfs): one is
generated once and kept under the edge's state, so it does not change with every restart."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.edge.nodeinfo import machine_id


def test_the_hosts_machine_id_is_used_when_there_is_one(tmp_path: Path) -> None:
    etc = tmp_path / "host"
    (etc / "etc").mkdir(parents=True)
    (etc / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    state = tmp_path / "state"
    assert machine_id(state, etc) == "0123456789abcdef0123456789abcdef"
    assert not (state / "machine-id").exists()


def test_without_one_an_id_is_generated_once_and_kept_under_the_state(tmp_path: Path) -> None:
    bare, state = tmp_path / "bare", tmp_path / "state"
    bare.mkdir()
    first = machine_id(state, bare)
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert (state / "machine-id").read_text().strip() == first
    assert machine_id(state, bare) == first, "a restart got another machine id"
