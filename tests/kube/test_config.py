"""Kubeconfig resolution: flag > $KUBECONFIG > ~/.kube/config > in-cluster, and which one won."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runtime.errors import ConfigError
from runtime.kube.config import resolve_kubeconfig


def kubeconfig(path: Path, server: str, *, context: str = "c") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "k", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": {"token": "t0k"}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "ns1"}}],
                "current-context": context,
            }
        )
    )
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "flag": kubeconfig(tmp_path / "flag.yaml", "https://flag:1"),
        "env": kubeconfig(tmp_path / "env.yaml", "https://env:2"),
        "home": kubeconfig(tmp_path / "home" / ".kube" / "config", "https://home:3"),
        "sa": tmp_path / "sa",
    }


def in_cluster(sa: Path) -> dict[str, str]:
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text("sa-token")
    (sa / "namespace").write_text("kubeedge\n")
    (sa / "ca.crt").write_text("")
    return {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_precedence_each_source_reports_itself(files: dict[str, Path], tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(files["env"]), **in_cluster(files["sa"])}
    home = tmp_path / "home"
    got = resolve_kubeconfig(files["flag"], env=env, home=home, service_account=files["sa"])
    assert (got.source, got.server) == (f"--kubeconfig {files['flag']}", "https://flag:1")
    assert got.single.namespace == "ns1"

    got = resolve_kubeconfig(None, env=env, home=home, service_account=files["sa"])
    assert (got.source, got.server, got.path) == ("$KUBECONFIG", "https://env:2", files["env"])
    assert got.describe() == f"$KUBECONFIG ({files['env']})"

    env.pop("KUBECONFIG")
    got = resolve_kubeconfig(None, env=env, home=home, service_account=files["sa"])
    assert (got.source, got.server) == ("~/.kube/config", "https://home:3")

    got = resolve_kubeconfig(None, env=env, home=tmp_path / "nohome", service_account=files["sa"])
    assert (got.source, got.server) == ("in-cluster", "https://10.0.0.1:443")
    assert got.single.namespace == "kubeedge"


def test_kubeconfig_list_uses_first_existing(files: dict[str, Path], tmp_path: Path) -> None:
    env = {"KUBECONFIG": f"{tmp_path / 'missing'}:{files['env']}:{files['flag']}"}
    got = resolve_kubeconfig(None, env=env, home=tmp_path)
    assert got.server == "https://env:2"


def test_nothing_found_names_every_place_tried(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_kubeconfig(None, env={}, home=tmp_path, service_account=tmp_path / "sa")
    msg = str(err.value)
    for place in ("--kubeconfig", "$KUBECONFIG", "~/.kube/config", str(tmp_path), "in-cluster"):
        assert place in msg
    assert err.value.hint and "--kubeconfig" in err.value.hint


def test_named_but_missing_sources_are_errors(tmp_path: Path, files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match=r"--kubeconfig .*nope: file not found"):
        resolve_kubeconfig(tmp_path / "nope", env={"KUBECONFIG": str(files["env"])}, home=tmp_path / "home")
    with pytest.raises(ConfigError, match=r"\$KUBECONFIG=.*no such file"):
        resolve_kubeconfig(None, env={"KUBECONFIG": str(tmp_path / "gone")}, home=tmp_path / "home")


def test_broken_files_are_config_errors_naming_the_file(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("clusters: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*not valid YAML"):
        resolve_kubeconfig(bad_yaml, env={})
    wrong_ctx = kubeconfig(tmp_path / "ctx.yaml", "https://x:1", context="missing")
    with pytest.raises(ConfigError, match=r"ctx.yaml.*missing"):
        resolve_kubeconfig(wrong_ctx, env={})
    empty = tmp_path / "empty.yaml"
    empty.write_text("kind: Config\n")
    with pytest.raises(ConfigError, match=r"empty.yaml.*clusters"):
        resolve_kubeconfig(empty, env={})
