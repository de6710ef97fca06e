"""kubelet's AtomicWriter: a volume directory whose whole content changes in one rename.

    <dir>/..2026_11_28_10_00_00.123/   the payload (real files, with modes)
    <dir>/..data -> ..2026_...         swapped atomically (symlink + rename) on every update
    <dir>/<key>  -> ..data/<key>       what the container sees; stable across updates

A reader inside the container sees the old payload or the new one, never a mix — the property that
makes live configmap/secret/token updates safe. Unchanged payloads are not rewritten.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
DATA = "..data"


def _current(target: Path) -> Payload | None:
    data = target / DATA
    if not data.is_symlink():
        return None
    base = data.resolve()
    out: Payload = {}
    for path in base.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(base))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return out


def _check(rel: str) -> None:
    parts = Path(rel).parts
    if not parts or rel.startswith("/") or ".." in parts or parts[0].startswith(".."):
        raise ValueError(f"invalid volume item path {rel!r}")


def write(target: Path, payload: Payload, gid: int | None = None) -> bool:
    """Make `target` show exactly `payload`; True when something changed. `gid` (the pod's fsGroup)
    owns the files, as kubelet's volume ownership does."""
    for rel in payload:
        _check(rel)
    target.mkdir(parents=True, exist_ok=True)
    if _current(target) == payload:
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(new, 0o755)
    if gid is not None:
        os.chown(new, -1, gid)
    for rel, (content, mode) in payload.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
        if gid is not None:
            os.chown(path, -1, gid)
    old = (target / DATA).resolve() if (target / DATA).is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(new.name, tmp_link)
    os.replace(tmp_link, target / DATA)
    wanted = {Path(rel).parts[0] for rel in payload}
    for name in wanted:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{DATA}/{name}", link)
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.is_symlink() and entry.name not in wanted:
            entry.unlink()
    if old is not None and old != new and old.parent == target:
        shutil.rmtree(old, ignore_errors=True)
    return True
