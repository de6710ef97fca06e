"""The one-file `kedge` (scripts/launcher.sh + the one-folder build, scripts/build.sh): unpacked once per
version into a 0700 folder under the root's data dir, atomically, old versions cleaned, then exec'd."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

from tests.fixtures.procs import executable

HASH = re.compile(rb"^KEDGE_HASH=([0-9a-f]+)$", re.M)


def run(exe: Path, *args: str, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEDGE_DATA_DIR"}
    if data is not None:
        env["KEDGE_DATA_DIR"] = str(data)
    argv = [str(exe), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


def version_of(exe: Path) -> str:
    with exe.open("rb") as f:
        found = HASH.search(f.read(8192))
    assert found, f"no KEDGE_HASH line in the header of {exe}"
    return found.group(1).decode()


def other_version(exe: Path, tmp_path: Path, n: int) -> Path:
    """A copy of the executable that names another version (same payload, another content hash)."""
    raw = exe.read_bytes()
    old = version_of(exe)
    new = f"{n:0{len(old)}x}"
    copy = tmp_path / f"kedge-{n}"
    copy.write_bytes(raw.replace(f"KEDGE_HASH={old}\n".encode(), f"KEDGE_HASH={new}\n".encode(), 1))
    copy.chmod(0o755)
    return copy


def test_unpacks_once_per_version_into_a_private_folder_under_the_root(tmp_path: Path) -> None:
    exe = executable()
    root = tmp_path / "root"
    first = run(exe, "--root", str(root), "version", "-o", "json")
    assert first.returncode == 0, first.stderr
    assert '"kedgeVersion"' in first.stdout
    data = root / "var" / "lib" / "kedge" / "data"
    unpacked = data / version_of(exe)
    assert (unpacked / "kedge").is_file()
    st = data.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    inode = unpacked.stat().st_ino
    again = run(exe, f"--root={root}", "version")
    assert again.returncode == 0, again.stderr
    assert unpacked.stat().st_ino == inode, "the second call unpacked again"
    assert sorted(p.name for p in data.iterdir()) == [unpacked.name], "leftovers beside the version"


def test_a_new_version_removes_all_but_itself_and_the_one_before(tmp_path: Path) -> None:
    exe = executable()
    data = tmp_path / "data"
    versions = [other_version(exe, tmp_path, n) for n in (1, 2, 3)]
    data.mkdir(mode=0o700)
    cut_short = data / ".unpack-999999"  # an unpack killed two hours ago
    cut_short.mkdir()
    os.utime(cut_short, (time.time() - 7200, time.time() - 7200))
    for v in versions:
        done = run(v, "version", data=data)
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in data.iterdir()) == sorted(version_of(v) for v in versions[1:])


def test_concurrent_first_calls_unpack_one_version(tmp_path: Path) -> None:
    exe = executable()
    data = tmp_path / "data"
    env = {**os.environ, "KEDGE_DATA_DIR": str(data)}
    procs = [
        subprocess.Popen([str(exe), "version"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        assert b"kedge" in out
    assert [p.name for p in data.iterdir()] == [version_of(exe)]


def test_refuses_a_data_folder_others_can_enter(tmp_path: Path) -> None:
    exe = executable()
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    done = run(exe, "version", data=data)
    assert done.returncode == 70
    assert "mode 755, want 700" in done.stderr
    assert list(data.iterdir()) == [], "unpacked into a folder it refused"
