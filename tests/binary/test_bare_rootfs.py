"""Self-contained proof (issue 14): the executable runs in a container whose rootfs holds only busybox,
glibc and zlib (scripts/lib.sh bare_rootfs) — no Python, OpenSSL or sqlite, no /etc/machine-id, a
read-only rootfs with a writable /tmp, no network but loopback, no Docker engine. It answers `version`;
with a joined edge's state mounted, `kedge edge run` keeps running against an unreachable cloud, and
`kedge status` inside the container reports it offline and names the missing Docker engine."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import REPO, require
from tests.fixtures.edge import make_edge_root
from tests.fixtures.procs import executable
from tests.fixtures.tlscerts import TLSCerts
from tests.fixtures.wait import eventually

BIN = "/usr/local/bin/kedge"


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done


@pytest.fixture(scope="module")
def bare_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require("docker")
    rootfs = tmp_path_factory.mktemp("bare-rootfs")
    subprocess.run(["bash", f"{REPO}/scripts/lib.sh", "bare_rootfs", str(rootfs)], check=True, timeout=120)
    for banned in ("usr/bin/python3", "etc/machine-id", "usr/lib/x86_64-linux-gnu/libssl.so.3"):
        assert not (rootfs / banned).exists(), f"{banned} in the bare rootfs"
    tag = f"kedge.test/bare-rootfs:{uuid.uuid4().hex[:12]}"
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    done = subprocess.run(["docker", "import", "-", tag], stdin=tar.stdout, capture_output=True, timeout=300)
    tar.wait(timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    try:
        yield tag
    finally:
        docker("image", "rm", "-f", tag, check=False)


def run_args(name: str, exe: Path, *mounts: Path) -> list[str]:
    vols = [a for m in mounts for a in ("-v", f"{m}:{m}")]
    return [
        "--name", name, "--label", "kedge.test=bare-rootfs", "--read-only",
        "--tmpfs", "/tmp:rw,exec,size=512m", "--network", "none",
        "-v", f"{exe}:{BIN}:ro", *vols,
    ]  # fmt: skip


def test_version_in_a_bare_rootfs(bare_image: str) -> None:
    exe = executable()
    name = f"kedge-bare-{uuid.uuid4().hex[:8]}"
    done = docker("run", "--rm", *run_args(name, exe), bare_image, BIN, "version", "-o", "json")
    info = json.loads(done.stdout)
    assert info["kedgeVersion"] and info["python"], info
    # nothing else in the image could have run it: no interpreter, no TLS or sqlite library
    ls = docker("run", "--rm", bare_image, "/bin/sh", "-c", "ls /usr/bin /usr/lib/x86_64-linux-gnu")
    assert "python" not in ls.stdout and "libssl" not in ls.stdout and "libsqlite" not in ls.stdout


def test_edge_runs_offline_in_a_bare_rootfs_and_status_names_the_missing_engine(
    bare_image: str, tls_certs: TLSCerts, tmp_path: Path
) -> None:
    exe = executable()
    root = tmp_path / "edge"
    # joined to a cloud that is not there: nothing listens inside the container's own loopback
    make_edge_root(root, tls_certs, "bare-1", "127.0.0.1:9")
    name = f"kedge-bare-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", *run_args(name, exe, root), bare_image, BIN, "--root", str(root), "edge", "run")
    try:

        def status() -> dict[str, Any] | None:
            done = docker("exec", name, BIN, "--root", str(root), "-o", "json", "status", check=False)
            if not done.stdout.strip().startswith("{"):
                return None
            got: dict[str, Any] = json.loads(done.stdout)
            edge = got.get("edge") or {}
            return got if edge.get("running") and edge.get("podsError") else None

        edge = eventually(status, 60, what="`kedge status` inside the container")["edge"]
        assert edge["cloud"]["connected"] is False and edge["cloud"]["lastError"], edge["cloud"]
        assert edge["podsError"].startswith("no Docker engine: /var/run/docker.sock does not exist")
        text = docker("exec", name, BIN, "--root", str(root), "status", check=False).stdout
        assert "no Docker engine" in text, text
        assert "DISCONNECTED" in text.upper() or "OFFLINE" in text.upper(), text
        time.sleep(3)  # and it keeps running, retrying the cloud
        assert docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "true"
        again = status()
        assert again is not None and again["edge"]["cloud"]["connected"] is False
        assert again["edge"]["process"]["pid"] == 1, "the runtime is not the container's own process"
    finally:
        logs = docker("logs", name, check=False)
        print(logs.stdout[-3000:], logs.stderr[-3000:])
        docker("rm", "-f", name, check=False)
