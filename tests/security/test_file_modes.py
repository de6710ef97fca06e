"""Key, token and kubeconfig files are created 0600 and the folders made for them 0700, by `kedge init
--embedded` and `kedge join` in a temporary root (the e2e fixture runs both)."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.fixtures.e2e import E2E
from tests.fixtures.wait import eventually

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
        if root == e2e.cloud.root:
            dirs.pop(CONFIG_DIR, None)  # see below
        assert {d: oct(m) for d, m in dirs.items() if m & 0o077} == {}, root
    edge_etc = [e2e.edge.root / d for d in (CONFIG_DIR, f"{CONFIG_DIR}/pki", f"{CONFIG_DIR}/pki/edge")]
    assert {str(d): oct(stat.S_IMODE(d.stat().st_mode)) for d in edge_etc} == {
        str(d): "0o700" for d in edge_etc
    }


def test_a_pre_created_edge_config_folder_is_made_0700_on_start(e2e: E2E) -> None:
    """An installer (or an earlier step) made etc/kedge 0755: the edge runtime tightens it when it
    starts, and says so once."""
    edge = e2e.edge
    loose = [edge.root / CONFIG_DIR, edge.root / CONFIG_DIR / "pki"]
    for d in loose:
        d.chmod(0o755)
    edge.kill9()
    edge.run_detached()  # its status socket may still be the killed one's: wait for the log line
    log = edge.root / "edge-run.log"
    said = f"{edge.root / CONFIG_DIR} was readable by others: made 0700"
    eventually(lambda: said in log.read_text(), 30, "the restarted runtime to tighten etc/kedge", log=log)
    assert {str(d): oct(stat.S_IMODE(d.stat().st_mode)) for d in loose} == {str(d): "0o700" for d in loose}


CONFIG_DIR = "etc/kedge"
# The cloud's configuration folder also holds config.yaml and the admin kubeconfig (0600); it stays
# 0755 as kubeadm's /etc/kubernetes does (admin.conf 0600 inside). The edge's (edge.toml, pki/edge
# with the node key) is 0700, tightened on every start. Every folder made for keys is 0700.
