"""The CLI frame as a user meets it: a real subprocess, exit codes from design.md §7, edge dispatch."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from kubeedge_cli.entry import _is_edge_run
from kubeedge_cli.errors import exit_code_for
from kubeedge_cli.options import Format, KubeconfigOpt, Settings, global_options
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


def test_edge_run_parsers_stay_in_step() -> None:
    """`kedge edge run` is parsed once, by the launcher's argparse (the edge process loads no typer);
    entry.py's list of global options that take a value (it must not import typer either) is the
    one typer declares, and the launcher accepts every global option, before or after the command."""
    from typer.core import TyperOption
    from typer.main import get_command

    from kubeedge_cli.entry import _VALUED
    from kubeedge_cli.main import app
    from kubeedge_cli.options import _GLOBAL
    from runtime.edge.launcher import parse

    params = get_command(app).params
    options = [p for p in params if isinstance(p, TyperOption) and p.name in _GLOBAL]
    assert len(options) == len(_GLOBAL)
    valued = {o for p in options if not (p.is_flag or p.count) for o in (*p.opts, *p.secondary_opts)}
    assert valued == _VALUED
    every = [o for p in options for o in p.opts]
    given = [a for o in every for a in ([o] if o == "-v" or o == "--verbose" else [o, "/x"])]
    assert parse([*given, "edge", "run"]).root == "/x"
    assert parse(["edge", "run", *given]).verbose == 2


def _probe_app() -> tuple[typer.Typer, list[tuple[Settings, str, Path | None]]]:
    """The real main callback (global options before the command) with a command that records what
    @global_options hands it; `kubeconfig` is declared by the command itself, so it also sees its own."""
    from kubeedge_cli.main import _globals

    seen: list[tuple[Settings, str, Path | None]] = []
    app = typer.Typer()
    app.callback()(_globals)

    @app.command()
    @global_options("output", "kubeconfig", "root")
    def probe(
        s: Settings,
        name: Annotated[str, typer.Option("--name")] = "",
        kubeconfig: KubeconfigOpt = None,
    ) -> None:
        seen.append((s, name, kubeconfig))

    return app, seen


@pytest.mark.parametrize(
    ("argv", "output", "kubeconfig", "own"),
    [
        (
            ["probe", "--name", "n", "-o", "json", "--kubeconfig", "/k", "--root", "/r"],
            Format.json,
            "/k",
            "/k",
        ),
        (
            ["-o", "json", "--kubeconfig", "/k", "--root", "/r", "probe", "--name", "n"],
            Format.json,
            "/k",
            None,
        ),
        (
            ["-o", "yaml", "--root", "/x", "probe", "--name", "n", "-o", "json", "--root", "/r"],
            Format.json,
            None,
            None,
        ),
    ],
)
def test_global_options_merge_before_and_after_the_command(
    argv: list[str], output: Format, kubeconfig: str | None, own: str | None
) -> None:
    app, seen = _probe_app()
    done = CliRunner().invoke(app, argv)
    assert done.exit_code == 0, done.output
    [(s, name, given)] = seen
    assert (s.output, s.kubeconfig, s.root, name) == (
        output,
        Path(kubeconfig) if kubeconfig else None,
        Path("/r"),
        "n",
    )
    assert given == (Path(own) if own else None)


def test_global_options_are_listed_after_the_command_options() -> None:
    app, _ = _probe_app()
    help_text = CliRunner().invoke(app, ["probe", "--help"], env={"COLUMNS": "200"}).output
    places = [help_text.index(o) for o in ("--name", "--output", "--kubeconfig", "--root")]
    assert places == sorted(places), help_text


def _commands() -> list[tuple[list[str], str]]:
    """Every command path of the CLI with the help text it declares (each command's `help=`)."""
    from typer.main import get_command

    from kubeedge_cli.main import app

    found: list[tuple[list[str], str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if getattr(cmd, "commands", None):  # a group
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        elif cmd.add_help_option:  # `edge run` and `kubectl` pass --help on to what they run
            found.append((path, cmd.help or ""))

    walk(get_command(app), [])
    return found


def test_every_command_explains_itself_in_help() -> None:
    """Each command's --help shows its description. The executable's bytecode carries no docstrings
    (build.spec: optimize=2), so a description has to be the command's `help=`, never its docstring."""
    commands = _commands()
    assert len(commands) >= 11, commands
    for path, declared in commands:
        assert declared, f"kedge {' '.join(path)} declares no help= text"
        done = subprocess.run([*KEDGE, *path, "--help"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "400"})  # fmt: skip
        assert done.returncode == 0, done.stderr
        first = declared.split("\n\n")[0]
        assert " ".join(first.split()) in " ".join(done.stdout.split()), (path, done.stdout)
