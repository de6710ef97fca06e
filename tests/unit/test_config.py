"""Config: defaults, TOML loading, typed --set overrides, and errors that name file, key, value, type."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from runtime.config import (
    KUBEEDGE_PROJECT_ID,
    CloudConfig,
    EdgeConfig,
    apply_overrides,
    dump,
    load,
    load_cloud,
    load_edge,
    save,
)
from runtime.errors import ConfigError


def test_edge_defaults_and_paths_under_root(tmp_path: Path) -> None:
    cfg = load_edge(None, tmp_path)  # no file: defaults
    assert cfg.hub.heartbeat_seconds == 15.0
    assert cfg.hub.cert_port == 10002
    assert cfg.hub.project_id == KUBEEDGE_PROJECT_ID == "e632aba927ea4ac2b575ec1603d56f10"
    assert cfg.hub.reconnect_cap_seconds == 30.0
    assert cfg.mqtt.mode == "embedded" and cfg.mqtt.port == 1883
    assert cfg.cache.db == str(tmp_path / "var/lib/kedge/edge/cache.db")
    assert cfg.status.socket == str(tmp_path / "run/kedge/edge.sock")


def test_cloud_defaults(tmp_path: Path) -> None:
    cfg = load_cloud(None, tmp_path)
    assert (cfg.hub.websocket_port, cfg.hub.cert_port) == (10000, 10002)
    assert cfg.hub.keepalive_timeout_seconds == 30.0
    assert (cfg.hub.rate_limit_qps, cfg.hub.rate_limit_burst) == (30.0, 60)
    assert cfg.hub.resend_seconds == 5.0 and cfg.hub.max_frame_bytes == 8 * 1024 * 1024
    assert cfg.namespace == "kubeedge" and cfg.autonomy_window_seconds == 86400
    assert cfg.kubeconfig == str(tmp_path / "etc/kedge/admin.kubeconfig")


def test_load_from_file_default_location(tmp_path: Path) -> None:
    f = tmp_path / "etc/kedge/edge.toml"
    f.parent.mkdir(parents=True)
    f.write_text(
        '[node]\nname = "e1"\nlabels = {zone = "a"}\n[hub]\nserver = "10.0.0.1:10000"\n'
        'heartbeat_seconds = 5\n[cache]\ndb = "/x.db"\n'
    )
    cfg = load_edge(None, tmp_path)
    assert cfg.node.name == "e1" and cfg.node.labels == {"zone": "a"}
    assert cfg.hub.server == "10.0.0.1:10000"
    assert cfg.hub.heartbeat_seconds == 5.0 and isinstance(cfg.hub.heartbeat_seconds, float)
    assert cfg.cache.db == "/x.db"  # explicit path wins over the root-derived default
    assert cfg.mqtt.port == 1883  # untouched sections keep defaults


def test_overrides_parse_to_field_types(tmp_path: Path) -> None:
    cfg = load_edge(
        None,
        tmp_path,
        [
            "hub.cert_port=10012",
            "hub.heartbeat_seconds=2.5",
            "node.with_edge_taint=yes",
            "node.labels=a=1, b=2",
            "node.taints=k=v:NoSchedule,x=y:NoExecute",
            "mqtt.mode=external",
            "node.name=edge 1",
        ],
    )
    assert cfg.hub.cert_port == 10012
    assert cfg.hub.heartbeat_seconds == 2.5
    assert cfg.node.with_edge_taint is True
    assert cfg.node.labels == {"a": "1", "b": "2"}
    assert cfg.node.taints == ["k=v:NoSchedule", "x=y:NoExecute"]
    assert cfg.mqtt.mode == "external"
    assert cfg.node.name == "edge 1"
    apply_overrides(cfg, ["node.labels.zone=eu-1", "node.labels.a=9"])
    assert cfg.node.labels == {"a": "9", "b": "2", "zone": "eu-1"}
    c = CloudConfig()
    apply_overrides(c, ["advertise_addresses=1.2.3.4,5.6.7.8", "advertise_addresses="])
    assert c.advertise_addresses == []


def test_override_wins_over_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[hub]\nwebsocket_port = 11000\n")
    assert load(CloudConfig, f, ["hub.websocket_port=12000"]).hub.websocket_port == 12000
    assert load(CloudConfig, f).hub.websocket_port == 11000


def test_dump_roundtrips(tmp_path: Path) -> None:
    cfg = load_edge(None, tmp_path, ["node.labels=a=b", "node.name=n"])
    f = tmp_path / "out.toml"
    save(cfg, f)
    assert f.stat().st_mode & 0o777 == 0o600
    assert load(EdgeConfig, f) == cfg
    assert tomllib.loads(dump(CloudConfig()))["hub"]["websocket_port"] == 10000


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ('[hub]\ncert_port = "x"\n', "hub.cert_port", "an integer"),
        ("[hub]\ncert_port = 70000\n", "hub.cert_port", "between 0 and 65535"),
        ("[hub]\nheartbeat_seconds = true\n", "hub.heartbeat_seconds", "a number"),
        ("[hub]\nheartbeat_seconds = 0\n", "hub.heartbeat_seconds", "> 0"),
        ("[node]\nwith_edge_taint = 1\n", "node.with_edge_taint", "a boolean"),
        ('[node]\ntaints = "a"\n', "node.taints", "a list of strings"),
        ("[node]\nlabels = {a = 1}\n", "node.labels", "a table of string values"),
        ('[mqtt]\nmode = "cloud"\n', "mqtt.mode", "one of 'embedded', 'external', 'off'"),
        ("hub = 3\n", "hub", "a table [section]"),
    ],
)
def test_file_errors_name_file_key_value_type(tmp_path: Path, toml: str, key: str, expected: str) -> None:
    f = tmp_path / "edge.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as ei:
        load(EdgeConfig, f)
    msg = str(ei.value)
    assert str(f) in msg and f"{key} = " in msg and expected in msg, msg


def test_unknown_key_in_file(tmp_path: Path) -> None:
    f = tmp_path / "edge.toml"
    f.write_text("[hub]\nheartbeat = 3\n")
    with pytest.raises(ConfigError, match=r"edge\.toml: unknown key hub\.heartbeat") as ei:
        load(EdgeConfig, f)
    assert ei.value.hint and "heartbeat_seconds" in ei.value.hint
    f.write_text("[nope]\n")
    with pytest.raises(ConfigError, match="unknown key nope"):
        load(EdgeConfig, f)


def test_bad_toml_and_bad_utf8(tmp_path: Path) -> None:
    f = tmp_path / "edge.toml"
    f.write_text("[hub\n")
    with pytest.raises(ConfigError, match=f"{f}: invalid TOML"):
        load(EdgeConfig, f)
    f.write_bytes(b'name = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(EdgeConfig, f)


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ("hub.cert_port=abc", "hub.cert_port = 'abc': expected an integer"),
        ("hub.heartbeat_seconds=fast", "expected a number"),
        ("node.with_edge_taint=maybe", "expected a boolean"),
        ("node.labels=a", "expected a table of string values"),
        ("mqtt.mode=bogus", "expected one of"),
        ("hub.nope=1", "unknown key hub.nope"),
        ("nope.x=1", "unknown key nope"),
        ("hub=1", "hub is a section"),
        ("node.name.x=1", "node.name is a string, not a section"),
        ("node.labels.a.b=1", "node.labels is a table of string values, not a section"),
        ("hub.cert_port", "expected KEY=VALUE"),
    ],
)
def test_override_errors_name_the_set(tmp_path: Path, item: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_edge(None, tmp_path, [item])
    assert f"--set {item}" in str(ei.value) and fragment in str(ei.value), str(ei.value)
