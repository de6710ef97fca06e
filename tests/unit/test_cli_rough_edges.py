"""The rough edges a new user hit (issue 14), each as the user meets it: a real `kedge` subprocess, its
message, its exit code, and what it left under --root (nothing, when it failed).

The ones that need a running cloud and edge are in tests/e2e/test_cli_edges.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.procs import KEDGE


def kedge(
    *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEDGE, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def files_under(root: Path) -> list[str]:
    """Everything under `root` (directories too): what a failed command left behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def one_error(done: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """The `error:` and `hint:` lines of a failed command — and nothing like a traceback."""
    assert "Traceback" not in done.stderr and "╭" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(at) == 1 and at[0] + 2 == len(lines) and lines[-1].startswith("  hint: "), done.stderr
    return lines[-2], lines[-1].strip()


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ tracebacks -> error + hint


def test_apiserver_on_a_port_in_use_is_one_error_line(tmp_path: Path, busy_port: int) -> None:
    done = kedge("apiserver", "--data-dir", str(tmp_path / "d"), "--port", str(busy_port))
    assert done.returncode == 1
    error, hint = one_error(done)
    assert f"cannot listen on 127.0.0.1:{busy_port}" in error and "in use" in error
    assert "--port" in hint
    assert done.stdout == ""


def test_init_embedded_ignoring_the_port_check_leaves_nothing(tmp_path: Path, busy_port: int) -> None:
    root = tmp_path / "r"
    root.mkdir()
    done = kedge("init", "--embedded", "--root", str(root), "--apiserver-port", str(busy_port),
                 "--ignore-preflight-errors=ports", "--no-token")  # fmt: skip
    assert done.returncode == 1, done.stderr
    error, hint = one_error(done)
    assert "kedge apiserver exited" in error and f"127.0.0.1:{busy_port}" in error
    assert f"--root {root}" in hint  # hints name the --root given
    assert files_under(root) == []  # no API server data, no pid file, no log, no lock


def test_init_without_a_kubeconfig_creates_no_lock(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    home = tmp_path / "home"  # no ~/.kube/config
    done = kedge("init", "--root", str(root), env={"HOME": str(home), "KUBERNETES_SERVICE_HOST": ""})
    assert done.returncode == 2, done.stderr
    error, _ = one_error(done)
    assert "kubeconfig" in error.lower() or "kubernetes" in error.lower()
    assert files_under(root) == [], "no run/kedge/cloud-admin.lock before failing"


# ------------------------------------------------------------------ join input


def test_join_server_with_a_scheme(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    done = kedge("join", "--token", "x", "--server", "http://127.0.0.1:10000", "--root", str(root))
    assert done.returncode == 2
    error, hint = one_error(done)
    assert "http://" in error and "TLS" in error and "HOST[:PORT]" in hint
    assert files_under(root) == []
    # https:// (and wss://) name the same HOST:PORT: accepted, then checked like any other server
    port = closed_port()
    done = kedge("-o", "json", "join", "--token", "x", "--server", f"https://127.0.0.1:{port}/",
                 "--root", str(root), "--dry-run")  # fmt: skip
    assert done.returncode == 3
    body = json.loads(done.stderr.strip().splitlines()[-1])
    hub = next(c for c in body["checks"] if c["name"] == "hub-port")
    assert f"127.0.0.1:{port}" in hub["detail"]
    assert files_under(root) == []


def test_join_json_failure_carries_checks_and_reasons(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    done = kedge("-o", "json", "join", "--token", "not-a-token", "--server", f"127.0.0.1:{closed_port()}",
                 "--cert-port", str(closed_port()), "--root", str(root), "--node-name", "j")  # fmt: skip
    assert done.returncode == 3
    assert done.stdout == ""
    body = json.loads(done.stderr.strip().splitlines()[-1])
    assert body["type"] == "PreflightFailed"
    assert set(body["failed"]) >= {"token", "cert-port", "hub-port"}
    by_name = {c["name"]: c for c in body["checks"] if c["verdict"] == "error"}
    assert "malformed token" in by_name["token"]["detail"] and by_name["token"]["hint"]
    assert "Connection refused" in by_name["cert-port"]["detail"]
    assert files_under(root) == []


@pytest.mark.docker
def test_join_warns_why_docker_live_restore_matters(tmp_path: Path) -> None:
    import docker

    client = docker.from_env(timeout=30)
    try:
        live_restore = bool(client.info().get("LiveRestoreEnabled"))
    finally:
        client.close()
    done = kedge("-o", "json", "join", "--token", "x", "--server", f"127.0.0.1:{closed_port()}",
                 "--root", str(tmp_path), "--dry-run")  # fmt: skip
    checks = json.loads(done.stderr.strip().splitlines()[-1])["checks"]
    warned = [c for c in checks if c["name"] == "docker" and c["verdict"] == "warning"]
    if live_restore:
        assert not warned
        return
    [warning] = warned  # this engine runs without live-restore: one line saying why it matters
    assert "restarting or upgrading dockerd stops every pod here" in warning["detail"]
    assert "live-restore" in warning["hint"] and "reload" in warning["hint"]


# ------------------------------------------------------------------ reset on an empty root


@pytest.mark.parametrize("role", ["cloud", "edge", "all", None])
def test_reset_on_an_empty_root_has_nothing_to_do(tmp_path: Path, role: str | None) -> None:
    done = kedge("reset", *([role] if role else []), "--root", str(tmp_path), "--force")
    assert done.returncode == 0, done.stderr
    assert "nothing to reset" in done.stderr
    assert files_under(tmp_path) == []


# ------------------------------------------------------------------ help and flags


def test_verbose_takes_a_level_as_kubectl_does() -> None:
    for argv in (
        ["-v", "2", "version"],
        ["-v=2", "version"],
        ["--verbose", "2", "version"],
        ["-vv", "version"],
    ):
        done = kedge(*argv, "-o", "json")
        assert done.returncode == 0, (argv, done.stderr)
        assert json.loads(done.stdout)["kedgeVersion"]


def test_edge_run_takes_a_verbose_level_too(tmp_path: Path) -> None:
    """`kedge edge run` is dispatched before typer (kubeedge_cli/entry.py): `-v 2` works there too."""
    done = kedge("edge", "run", "-v", "2", "--root", str(tmp_path))
    assert done.returncode == 2
    assert one_error(done)[0].endswith("node.name and hub.server are required")  # not a usage error


def test_version_flag() -> None:
    from runtime import __version__

    done = kedge("--version")
    assert done.returncode == 0 and done.stdout == f"kedge {__version__}\n"


def test_unknown_option_suggests_only_close_names() -> None:
    bogus = kedge("init", "--bogus")
    assert bogus.returncode == 2
    error, hint = one_error(bogus)
    assert error == "error: no such option: --bogus" and "`kedge init --help`" in hint
    typo = kedge("init", "--embeded")
    assert typo.returncode == 2
    assert one_error(typo)[0] == "error: no such option: --embeded (did you mean --embedded?)"


def test_help_shows_flags_without_types_and_whole_texts() -> None:
    for command in (["reset"], ["join"], ["init"], ["edge", "run"], ["status"], ["apiserver"]):
        done = kedge(*command, "--help", env={"COLUMNS": "80"})
        assert done.returncode == 0, done.stderr
        assert "<bool>" not in done.stdout and "│" not in done.stdout, done.stdout  # no cut-off panels
        assert done.stdout.startswith(f"Usage: kedge {' '.join(command)} ")
    join = kedge("join", "--help", env={"COLUMNS": "80"}).stdout
    assert "--ignore-preflight-errors" in join and "'all'" in join
    assert "--no-dry-run" not in join and "--no-foreground" not in join
    edge_run = kedge("edge", "run", "--help", env={"COLUMNS": "80"}).stdout
    assert "no-foreground" not in edge_run and "always runs in the foreground" in " ".join(edge_run.split())


def test_hints_name_the_root_given(tmp_path: Path) -> None:
    done = kedge("status", "--root", str(tmp_path))
    assert done.returncode == 1
    _, hint = one_error(done)
    assert f"`kedge join --root {tmp_path}`" in hint and f"`kedge init --root {tmp_path}`" in hint
    plain = kedge("status", "--root", "/")  # the default root: nothing to add
    assert "--root" not in one_error(plain)[1]


# ------------------------------------------------------------------ kedge kubectl


@pytest.mark.kubectl
def test_kubectl_runs_with_the_roots_kubeconfig(tmp_path: Path) -> None:
    admin = tmp_path / "etc" / "kedge" / "admin.kubeconfig"
    admin.parent.mkdir(parents=True)
    admin.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "contexts:\n- name: k\n  context: {cluster: k, user: k}\ncurrent-context: k\n"
        "users:\n- name: k\n  user: {token: t}\n"
    )
    # everything after `kubectl` is kubectl's, -v and -o included
    server = "jsonpath={.clusters[0].cluster.server}"
    done = kedge("--root", str(tmp_path), "kubectl", "config", "view", "-o", server, "-v", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "https://127.0.0.1:1"
    failing = kedge("--root", str(tmp_path), "kubectl", "get", "nodes", "--request-timeout", "2s")
    assert failing.returncode == 1 and "127.0.0.1:1" in failing.stderr  # kubectl's own exit code and words


def test_kubectl_missing_says_how_to_get_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # this PATH's programs but kubectl (the one-file kedge needs sh, tar…)
    bin_dir.mkdir()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for exe in Path(d).glob("*") if d and Path(d).is_dir() else ():
            if exe.name != "kubectl" and not (bin_dir / exe.name).exists():
                (bin_dir / exe.name).symlink_to(exe)
    done = kedge("kubectl", "get", "nodes", env={"PATH": str(bin_dir)})
    assert done.returncode == 1
    error, hint = one_error(done)
    assert "kubectl is not installed" in error
    assert "kubernetes-client" in hint and "kubernetes.io/docs/tasks/tools" in hint


@pytest.mark.kubectl
def test_kubectl_help_is_kubectls() -> None:
    done = kedge("kubectl", "--help")
    assert done.returncode == 0 and "kubectl controls the Kubernetes cluster manager" in done.stdout
