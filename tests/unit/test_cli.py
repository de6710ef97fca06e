"""The CLI frame as a user meets it: a real subprocess, exit codes from design.md §7, edge dispatch."""

from __future__ import annotations

import json
import subprocess

import pytest

from kubeedge_cli.entry import _is_edge_run
from kubeedge_cli.errors import exit_code_for
from runtime import PROTOCOL_VERSION, __version__
from runtime.errors import (
    AuthError,
    ConfigError,
    Conflict,
    KedgeError,
    NotFound,
    PartialFailure,
    PreflightFailed,
    ProtocolError,
    Unreachable,
    UsageError,
)
from tests.fixtures.procs import KEDGE


def kedge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEDGE, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("argv", [["version", "-o", "json"], ["-o", "json", "version"]])
def test_version_json_on_stdout(argv: list[str]) -> None:
    done = kedge(*argv)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["kedgeVersion"] == __version__
    assert info["protocolVersion"] == PROTOCOL_VERSION
    assert info["kubeletVersion"].startswith("v1.")


def test_help_renders_and_lists_commands() -> None:
    done = kedge("--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert "version" in done.stdout
    for option in ("--output", "--kubeconfig", "--verbose", "--root"):
        assert option in done.stdout


def test_unknown_command_is_a_usage_error() -> None:
    done = kedge("no-such-command")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "no-such-command" in done.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (KedgeError("x"), 1),
        (ProtocolError("x"), 1),
        (NotFound("x"), 1),
        (Conflict("x"), 1),
        (RuntimeError("x"), 1),
        (ConfigError("x"), 2),
        (UsageError("x"), 2),
        (PreflightFailed("x", failed=["docker"]), 3),
        (Unreachable("x"), 4),
        (AuthError("x"), 5),
        (PartialFailure("x", errors=["a"]), 6),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_exit_code_for_every_error_class(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_exit_code_for_subclass_follows_its_base() -> None:
    class ExpiredToken(AuthError):
        pass

    assert exit_code_for(ExpiredToken("token expired")) == 5


@pytest.mark.parametrize(
    ("argv", "dispatch"),
    [
        (["edge", "run"], True),
        (["edge", "run", "--config", "/x"], True),
        (["-v", "edge", "run"], True),
        (["--root", "/x", "edge", "run"], True),
        (["--root=/x", "edge", "run"], True),
        (["-o", "json", "--kubeconfig", "/k", "edge", "run"], True),
        (["edge", "run", "--help"], False),
        (["-h", "edge", "run"], False),
        (["edge"], False),
        (["version"], False),
        (["--root", "edge", "run"], False),  # "edge" is --root's value; the command is "run"
        (["cloud", "run"], False),
        ([], False),
    ],
)
def test_edge_run_dispatch(argv: list[str], dispatch: bool) -> None:
    assert _is_edge_run(argv) is dispatch
