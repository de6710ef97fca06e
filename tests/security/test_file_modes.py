"""Key, token and kubeconfig files are created 0600 and the folders made for them 0700, by `kedge init
--embedded` and `kedge join` in a temporary root (the e2e fixture runs both)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.fixtures.e2e import E2E

SECRET_WORDS = ("key", "token", "kubeconfig", ".conf", "password")


def is_secret(p: Path) -> bool:
    name = p.name.lower()
    return (name.endswith((".key", ".pem")) and "ca.crt" not in name) or any(w in name for w in SECRET_WORDS)


def modes(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """(secret file → mode, directory holding one → mode) under root."""
    files: dict[str, int] = {}
    dirs: dict[str, int] = {}
    for p in root.rglob("*"):
        if p.is_symlink() or not p.is_file() or not is_secret(p):
            continue
        files[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
        d = p.parent
        dirs[str(d.relative_to(root))] = stat.S_IMODE(d.stat().st_mode)
    return files, dirs


def test_init_and_join_create_secrets_0600_in_0700_directories(e2e: E2E) -> None:
    for root in (e2e.cloud.root, e2e.edge.root):
        files, dirs = modes(root)
        assert files, f"no key, token or kubeconfig found under {root}"
        assert {f: oct(m) for f, m in files.items() if m & 0o077} == {}, root
        dirs.pop(CONFIG_DIR, None)  # see below
        assert {d: oct(m) for d, m in dirs.items() if m & 0o077} == {}, root


CONFIG_DIR = "etc/kedge"
# The configuration folder also holds config.yaml and the admin kubeconfig (0600); it stays 0755 as
# kubeadm's /etc/kubernetes does (admin.conf 0600 inside). Every folder made for keys is 0700.
