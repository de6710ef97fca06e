"""Which Kubernetes API kedge talks to: flag > $KUBECONFIG > ~/.kube/config > in-cluster (design.md §7).

One function decides and reports which source won, so every command can say "using ~/.kube/config"
and a missing or broken kubeconfig is one ConfigError naming the places tried and the fix — never a
lightkube traceback. (lightkube's own `from_env` tries in-cluster first, the opposite of kubectl.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from lightkube.config.kubeconfig import SERVICE_ACCOUNT, KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError as LightkubeConfigError

from runtime.errors import ConfigError

FIX_HINT = (
    "pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config "
    "(`kedge init --embedded` writes an admin kubeconfig)"
)


@dataclass(frozen=True)
class KubeSource:
    """The kubeconfig that won: `source` is what to tell the user, `config` what lightkube needs."""

    source: str  # "--kubeconfig /x" | "$KUBECONFIG" | "~/.kube/config" | "in-cluster"
    config: KubeConfig
    path: Path | None = None  # the file read, None in-cluster

    @property
    def single(self) -> SingleConfig:
        """The current context (validated by resolve_kubeconfig, so this does not fail)."""
        conf = self.config.get()
        assert conf is not None
        return conf

    @property
    def server(self) -> str:
        return str(self.single.cluster.server)

    def describe(self) -> str:
        """Human form: `$KUBECONFIG (/etc/kedge/admin.kubeconfig)`."""
        if self.path is not None and not self.source.startswith("--kubeconfig"):
            return f"{self.source} ({self.path})"
        return self.source


def _load_file(path: Path, source: str) -> KubeSource:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(
            f"kubeconfig {path} ({source}): cannot read: {exc.strerror}", hint=FIX_HINT
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"kubeconfig {path} ({source}): not valid YAML: {exc}", hint=FIX_HINT) from exc
    if not isinstance(data, dict) or not data.get("clusters") or not data.get("contexts"):
        raise ConfigError(
            f"kubeconfig {path} ({source}): needs `clusters` and `contexts`", hint="check the file's content"
        )
    try:
        config = KubeConfig.from_dict(data, fname=path)
        single = config.get()
    except (LightkubeConfigError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"kubeconfig {path} ({source}): {exc}",
            hint="set `current-context` to a context whose cluster and user exist",
        ) from exc
    if single is None or not single.cluster.server:
        raise ConfigError(f"kubeconfig {path} ({source}): current context has no server", hint=FIX_HINT)
    return KubeSource(source=source, config=config, path=path)


def resolve_kubeconfig(
    flag: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    service_account: Path = Path(SERVICE_ACCOUNT),
) -> KubeSource:
    """Pick the kubeconfig like kubectl does and say which one won.

    `$KUBECONFIG` may list several files (`a:b`); the first existing one is used (kedge does not
    merge). A source that is named but missing is an error, not a silent fall-through.
    """
    env = os.environ if env is None else env
    if flag is not None:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"--kubeconfig {flag}: file not found", hint="check the path given to --kubeconfig"
            )
        return _load_file(path, f"--kubeconfig {flag}")
    tried: list[str] = ["--kubeconfig (not given)"]

    listed = [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        for entry in listed:
            path = Path(entry).expanduser()
            if path.is_file():
                return _load_file(path, "$KUBECONFIG")
        raise ConfigError(
            f"$KUBECONFIG={env['KUBECONFIG']}: no such file",
            hint="fix or unset KUBECONFIG, or pass --kubeconfig",
        )
    tried.append("$KUBECONFIG (unset)")

    default = (home if home is not None else Path(os.path.expanduser("~"))) / ".kube" / "config"
    if default.is_file():
        return _load_file(default, "~/.kube/config")
    tried.append(f"~/.kube/config ({default} missing)")

    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    token = service_account / "token"
    if host and port and token.is_file():
        if ":" in host:
            host = f"[{host}]"
        from lightkube.config.models import Cluster, User

        namespace_file = service_account / "namespace"
        namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
        config = KubeConfig.from_one(
            cluster=Cluster(
                server=f"https://{host}:{port}", certificate_auth=str(service_account / "ca.crt")
            ),
            user=User(token_file=str(token)),
            namespace=namespace,
        )
        return KubeSource(source="in-cluster", config=config)
    why = "KUBERNETES_SERVICE_HOST unset" if not host else f"{token} missing"
    tried.append(f"in-cluster ({why})")
    raise ConfigError("no Kubernetes configuration found; tried " + ", ".join(tried), hint=FIX_HINT)
