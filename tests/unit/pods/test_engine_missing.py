"""A host without Docker: the pod manager's error names the missing engine in words (issue 14: `kedge
status` in a bare container), and a refusing one reads differently from a missing one."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from runtime.edge.pods.adapter import DockerAdapter
from runtime.errors import Unreachable


async def refusal(host: str) -> Unreachable:
    """What asking the engine at `host` for its version raises."""
    adapter = DockerAdapter(host, timeout=5)
    try:
        with pytest.raises(Unreachable) as err:
            await adapter.version()
    finally:
        await adapter.close()
    return err.value


async def test_no_socket_reads_as_no_docker_engine(tmp_path: Path) -> None:
    err = await refusal(f"unix://{tmp_path}/docker.sock")
    assert str(err) == f"no Docker engine: {tmp_path}/docker.sock does not exist"
    assert "DOCKER_HOST" in (err.hint or "")


async def test_a_socket_nobody_answers_is_an_engine_not_answering(tmp_path: Path) -> None:
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening: connect() is refused
        err = await refusal(f"unix://{path}")
    assert str(err).startswith(f"Docker engine unix://{path} is not answering")
