"""Typed config for the edge and cloud roles, loaded from TOML (design.md §3).

Every field has a default, so a missing file means "all defaults". One generic loader walks the
dataclass fields — adding a field is one line, never new parsing code. Every error names the file
(or ``--set a.b=c``), the dotted key, the bad value and the expected type, because a config error is
only useful if the user can find and fix the line. Empty path fields are filled from ``runtime.paths``
under ``--root`` at load time, so a config file stays valid when the root moves.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomli_w

from runtime.errors import ConfigError
from runtime.fsutil import write_atomic
from runtime.paths import Paths

MAX_FRAME_BYTES = 8 * 1024 * 1024  # same as runtime.protocol.codec (kept import-free of protocol)
KUBEEDGE_PROJECT_ID = "e632aba927ea4ac2b575ec1603d56f10"  # KubeEdge's default projectID

T = TypeVar("T")


DEFAULT_EDGE_METRICS = "127.0.0.1:10551"  # loopback only: a scraper on the edge machine, or a tunnel


def _port(default: int) -> Any:
    return field(default=default, metadata={"range": (0, 65535)})


def _positive(default: float) -> Any:
    return field(default=default, metadata={"range": (0, None), "exclusive_min": True})


# ---------------------------------------------------------------- edge


@dataclass
class NodeSection:
    name: str = ""  # defaults to the host name at join
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[str] = field(default_factory=list)  # "key=value:Effect"
    with_edge_taint: bool = False  # add node-role.kubernetes.io/edge:NoSchedule
    ip: str = ""  # the node's InternalIP and its pods' hostIP (edgecore's edged.nodeIP); "": default route


@dataclass
class EdgeHubSection:
    server: str = ""  # cloudhub websocket "host:port"
    cert_port: int = _port(10002)
    heartbeat_seconds: float = _positive(15.0)
    project_id: str = KUBEEDGE_PROJECT_ID
    reconnect_cap_seconds: float = _positive(30.0)
    connect_timeout_seconds: float = _positive(10.0)
    max_frame_bytes: int = _positive(MAX_FRAME_BYTES)


@dataclass
class MqttSection:
    mode: Literal["embedded", "external", "off"] = "embedded"
    url: str = ""  # external broker, e.g. tcp://127.0.0.1:1883 or ssl://host:8883
    bind: str = "127.0.0.1"  # embedded broker listen address
    port: int = _port(1883)
    listen: list[str] = field(default_factory=list)  # more "host:port" listeners, e.g. the pod gateway
    username: str = ""  # external broker credentials (or user:password@ in the url)
    password: str = ""
    ca: str = ""  # external broker TLS: CA file, client certificate and key
    cert: str = ""
    key: str = ""
    report_window_seconds: float = _positive(0.5)  # reports of one property coalesced per window
    # the uplink's own pace (reports per second to the cloud, and its burst): below the cloud's per-node
    # limit (hub.rate_limit_qps 30, burst 60; edgecore's messageQPS 30) so the node's other messages
    # keep room; while a report waits for the pace, later values of its property fold into it
    report_qps: float = _positive(20.0)
    report_burst: int = _positive(20)
    report_ack_timeout_seconds: float = _positive(10.0)  # a report the cloud did not answer is resent
    # twin store: answered updates are fsynced by a checkpointer every this many seconds (what a power
    # cut can lose; a killed edge loses nothing); 0 = fsync inside every commit, before the answer
    twin_sync_seconds: float = field(default=0.1, metadata={"range": (0, 60)})


@dataclass
class DmiSection:
    """KubeEdge's Device Management Interface: gRPC mappers on a unix socket (runtime/edge/devices/dmi)."""

    enabled: bool = False
    socket: str = ""  # default <root>/etc/kubeedge/dmi.sock: KubeEdge's path under kedge's root
    group: str = ""  # empty: the socket is 0600; a group name or gid: 0660 owned by that group
    rate: float = _positive(2000.0)  # requests per second from all mappers (token bucket)
    burst: int = _positive(2000)


@dataclass
class CacheSection:
    db: str = ""  # default <state>/cache.db


@dataclass
class StatusSection:
    socket: str = ""  # default /run/kedge/edge.sock under the root


@dataclass
class EdgeRuntimeSection:
    docker_host: str = "unix:///var/run/docker.sock"
    pod_sandbox_image: str = "kedge.local/busybox:1"
    volumes_dir: str = ""  # default <state>/pods
    # pods creating/starting containers at once; 0 = from the CPU count (2 per core, 2..16)
    parallel_pod_starts: int = field(default=0, metadata={"range": (0, 256)})
    # the containers' json-file logs (kubelet's containerLogMaxSize/containerLogMaxFiles): MiB a file, files
    container_log_max_mib: int = field(default=10, metadata={"range": (1, 1 << 20)})
    container_log_max_files: int = field(default=2, metadata={"range": (1, 100)})


@dataclass
class UsageSection:
    """Resource usage (CPU, memory) of the node and its pods' containers, sampled from cgroup files and
    reported to a kedge cloud (runtime/edge/usage/); `kubectl top` shows it. 0 turns sampling off."""

    interval_seconds: float = field(default=15.0, metadata={"range": (0, 3600)})
    cgroup_root: str = "/sys/fs/cgroup"


@dataclass
class EdgeAutonomySection:
    enabled: bool = True  # keep running pods while the cloud is away
    max_offline_seconds: int = _positive(86400)


@dataclass
class EdgeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    hub: EdgeHubSection = field(default_factory=EdgeHubSection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    dmi: DmiSection = field(default_factory=DmiSection)
    cache: CacheSection = field(default_factory=CacheSection)
    status: StatusSection = field(default_factory=StatusSection)
    runtime: EdgeRuntimeSection = field(default_factory=EdgeRuntimeSection)
    autonomy: EdgeAutonomySection = field(default_factory=EdgeAutonomySection)
    usage: UsageSection = field(default_factory=UsageSection)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # "host:port" for Prometheus /metrics (beside the status socket); ":port" binds 127.0.0.1; "" = off
    metrics_address: str = DEFAULT_EDGE_METRICS
    # the edge's event loop (runtime/eventloop.py): asyncio's own, or uvloop — 1.3-1.9 MB more RSS, device
    # updates answered sooner at high rates (p99 at 2,000/s: 6-11 ms against 35-39; docs/benchmarks.md)
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"


# ---------------------------------------------------------------- cloud


@dataclass
class CloudHubSection:
    bind: str = "0.0.0.0"
    websocket_port: int = _port(10000)
    cert_port: int = _port(10002)
    keepalive_timeout_seconds: float = _positive(30.0)
    max_frame_bytes: int = _positive(MAX_FRAME_BYTES)
    rate_limit_qps: float = _positive(30.0)  # per node, edge→cloud requests
    rate_limit_burst: int = _positive(60)
    resend_seconds: float = _positive(5.0)  # unacked cloud→edge messages
    cert_validity_days: int = _positive(365)


@dataclass
class CloudStreamSection:
    """The kubelet-like stream endpoint API servers dial for logs, exec, attach and port-forward of pods
    on this cloud's edges (runtime/cloud/streams; KubeEdge cloudstream's streamPort)."""

    bind: str = "0.0.0.0"
    port: int = _port(10003)
    client_ca: str = ""  # PEM file of the CA of API servers' kubelet-client certs; "": the kubeconfig's
    clients: list[str] = field(  # client-certificate CNs taken as an API server's kubelet client
        default_factory=lambda: ["kube-apiserver-kubelet-client", "system:kube-apiserver", "kedge:apiserver"]
    )
    max_sessions_per_node: int = _positive(32)
    open_timeout_seconds: float = _positive(5.0)  # the edge must open its tunnel within this


@dataclass
class LeaseSection:
    renew_seconds: float = _positive(10.0)  # the cloud renews a kedge edge's Lease from liveness
    duration_seconds: int = _positive(40)


@dataclass
class CloudStatusSection:
    socket: str = ""  # default /run/kedge/cloud.sock under the root


@dataclass
class KubeletEndpointSection:
    """What the cloud writes as its edge nodes' kubelet endpoint — the InternalIP address and
    ``status.daemonEndpoints.kubeletEndpoint.Port`` an API server dials for logs, exec, attach and
    port-forward (docs/streams.md). The edge reports its own; the cloud overrides them unless "none"."""

    # none: keep what the edge reports; direct: the node's address and port are this cloud's stream
    # endpoint (an API server that reaches it: the embedded one, tests); dnat: the edge's own address and
    # this replica's tunnel port, DNATed to the stream endpoint on the control-plane hosts (KubeEdge's way)
    mode: Literal["none", "direct", "dnat"] = "none"
    address: str = ""  # direct: the address written (default: the first advertise address, else 127.0.0.1)
    port: int = _port(0)  # the stream endpoint's port to point at (0: the port it bound)
    tunnel_address: str = ""  # dnat: where DNAT sends this replica's port (default: $POD_IP, advertise[0])
    tunnel_port_start: int = field(default=10351, metadata={"range": (1, 65535)})  # KubeEdge's first port


@dataclass
class CloudConfig:
    hub: CloudHubSection = field(default_factory=CloudHubSection)
    stream: CloudStreamSection = field(default_factory=CloudStreamSection)
    lease: LeaseSection = field(default_factory=LeaseSection)
    status: CloudStatusSection = field(default_factory=CloudStatusSection)
    kubelet_endpoint: KubeletEndpointSection = field(default_factory=KubeletEndpointSection)
    advertise_addresses: list[str] = field(default_factory=list)
    kubeconfig: str = ""  # default /etc/kedge/admin.kubeconfig under the root
    namespace: str = "kubeedge"
    autonomy_window_seconds: int = _positive(86400)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_address: str = ""


# ---------------------------------------------------------------- loading


def load(cls: type[T], path: Path | None, overrides: typing.Iterable[str] = ()) -> T:
    """Defaults, then the TOML file (if it exists), then ``--set`` overrides, in that order."""
    data: dict[str, Any] = {}
    where = "<defaults>"
    if path is not None:
        where = str(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        if raw is not None:
            try:
                data = tomllib.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax") from exc
    cfg = _build(cls, data, where, "")
    apply_overrides(cfg, overrides)
    return cfg


def load_edge(path: Path | None, root: Path, overrides: typing.Iterable[str] = ()) -> EdgeConfig:
    """Edge config from ``path`` (None: <root>/etc/kedge/edge.toml) with paths filled under ``root``."""
    paths = Paths.of(root, "edge")
    cfg = load(EdgeConfig, paths.config_file if path is None else path, overrides)
    cfg.cache.db = cfg.cache.db or str(paths.state / "cache.db")
    cfg.dmi.socket = cfg.dmi.socket or str(root / "etc" / "kubeedge" / "dmi.sock")
    cfg.status.socket = cfg.status.socket or str(paths.status_socket)
    cfg.runtime.volumes_dir = cfg.runtime.volumes_dir or str(paths.state / "pods")
    return cfg


def load_cloud(path: Path | None, root: Path, overrides: typing.Iterable[str] = ()) -> CloudConfig:
    """Cloud config from ``path`` (None: <root>/etc/kedge/cloud.toml) with paths filled under ``root``."""
    paths = Paths.of(root, "cloud")
    cfg = load(CloudConfig, paths.config_file if path is None else path, overrides)
    cfg.kubeconfig = cfg.kubeconfig or str(paths.admin_kubeconfig)
    cfg.status.socket = cfg.status.socket or str(paths.status_socket)
    return cfg


def dump(cfg: Any) -> str:
    """TOML text of a config (every field, so the file documents the defaults)."""
    return tomli_w.dumps(dataclasses.asdict(cfg))


def save(cfg: Any, path: Path) -> None:
    """Write atomically, mode 0600 (configs may hold addresses and node names worth not leaking)."""
    write_atomic(path, dump(cfg))


def apply_overrides(cfg: Any, overrides: typing.Iterable[str]) -> None:
    """Apply ``a.b=c`` strings in place; the value is parsed to the field's type.

    Lists are comma-separated, tables ``k=v,k2=v2``; ``node.labels.zone=a`` sets one table entry.
    """
    for item in overrides:
        where = f"--set {item}"
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{where}: expected KEY=VALUE, e.g. --set hub.heartbeat_seconds=15")
        target = cfg
        parts = key.split(".")
        for i, part in enumerate(parts):
            fields = {f.name: f for f in dataclasses.fields(target)}
            if part not in fields:
                _unknown(where, ".".join(parts[: i + 1]), fields)
            f = fields[part]
            hint = _hints(type(target))[part]
            if i == len(parts) - 2 and typing.get_origin(hint) is dict:  # node.labels.zone=a
                getattr(target, part)[parts[-1]] = text
                break
            if i < len(parts) - 1:
                if not _is_dc(hint):
                    section = ".".join(parts[: i + 1])
                    raise ConfigError(f"{where}: {section} is {_tname(hint)}, not a section")
                target = getattr(target, part)
                continue
            if _is_dc(hint):
                raise ConfigError(f"{where}: {key} is a section; set one of its keys, e.g. {key}.<name>=...")
            setattr(target, part, _check(_from_text(text, hint, where, key), hint, f, where, key))


# ---------------------------------------------------------------- the generic walker


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dc(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _build(cls: type[T], data: Any, where: str, prefix: str) -> T:
    if not isinstance(data, dict):
        _fail(where, prefix.rstrip(".") or "<top>", data, "a table [section]")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = prefix + name
        if name not in fields:
            _unknown(where, key, fields)
        tp = hints[name]
        if _is_dc(tp):
            kwargs[name] = _build(tp, value, where, key + ".")
        else:
            kwargs[name] = _check(value, tp, fields[name], where, key)
    return cls(**kwargs)


def _unknown(where: str, key: str, fields: dict[str, Any]) -> typing.NoReturn:
    raise ConfigError(f"{where}: unknown key {key}", hint=f"known keys here: {', '.join(sorted(fields))}")


def _fail(where: str, key: str, value: Any, expected: str) -> typing.NoReturn:
    raise ConfigError(f"{where}: {key} = {value!r:.80}: expected {expected}")


def _tname(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list of strings"
    if origin is dict:
        return "a table of string values"
    if _is_dc(tp):
        return "a table [section]"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _check(value: Any, tp: Any, f: dataclasses.Field[Any], where: str, key: str) -> Any:
    """Type-check a TOML value (or an already-parsed override) against the field; returns it coerced."""
    origin = typing.get_origin(tp)
    ok: bool
    if origin is Literal:
        ok = value in typing.get_args(tp)
    elif origin is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif origin is dict:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    elif tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"config field {key} has unsupported type {tp}")
    if not ok:
        _fail(where, key, value, _tname(tp))
    lo, hi = f.metadata.get("range", (None, None))
    if lo is not None and (value < lo or (f.metadata.get("exclusive_min") and value == lo)):
        _fail(where, key, value, f"{_tname(tp)} {'>' if f.metadata.get('exclusive_min') else '>='} {lo}")
    if hi is not None and value > hi:
        _fail(where, key, value, f"{_tname(tp)} between {lo} and {hi}")
    return value


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _from_text(text: str, tp: Any, where: str, key: str) -> Any:
    """Parse an override's text to the field's type; _check then validates it like a TOML value."""
    s = text.strip()
    origin = typing.get_origin(tp)
    if origin is list:
        return [p.strip() for p in s.split(",") if p.strip()]
    if origin is dict:
        out: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in s.split(","))):
            k, sep, v = pair.partition("=")
            if not sep or not k.strip():
                _fail(where, key, text, "a table of string values written k=v,k2=v2")
            out[k.strip()] = v.strip()
        return out
    if tp is bool:
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
        _fail(where, key, text, "a boolean (true/false)")
    if tp is int:
        try:
            return int(s, 0)
        except ValueError:
            _fail(where, key, text, "an integer")
    if tp is float:
        try:
            return float(s)
        except ValueError:
            _fail(where, key, text, "a number")
    return text  # str and Literal: raw text (not stripped: a value may need its spaces)


__all__ = [
    "KUBEEDGE_PROJECT_ID",
    "CacheSection",
    "CloudConfig",
    "CloudHubSection",
    "CloudStatusSection",
    "DmiSection",
    "EdgeAutonomySection",
    "EdgeConfig",
    "EdgeHubSection",
    "EdgeRuntimeSection",
    "LeaseSection",
    "MqttSection",
    "NodeSection",
    "StatusSection",
    "apply_overrides",
    "dump",
    "load",
    "load_cloud",
    "load_edge",
    "save",
]
