"""`kedge init`: install the cloud role (into the cluster, as a host process, or fully embedded).

Parses the flags into an InitRequest, runs runtime/cloud/install/init.py (`manifests` for --dry-run,
`install` otherwise) and renders its progress and summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kubeedge_cli import render
from kubeedge_cli.options import Format, KubeconfigOpt, Settings, global_options, parse_duration
from runtime.errors import UsageError

if TYPE_CHECKING:
    from runtime.cloud.install.preflight import CheckResult

app = typer.Typer()

EXAMPLES = """
Examples:

  kedge init --advertise-address 203.0.113.10          # into the current kubeconfig's cluster
  kedge init --dry-run -o yaml | kubectl apply -f -    # review, then apply yourself
  kedge init --embedded --root /srv/kedge              # API server + cloud on this machine
"""


@app.command(
    epilog=EXAMPLES,
    help="Install the kedge cloud: CRDs, RBAC, CA, the cloud itself; print the `kedge join` line.",
)
@global_options("output", "kubeconfig", "root")
def init(
    s: Settings,
    host: Annotated[
        bool, typer.Option("--host", help="Run the cloud as a local process (kubeconfig's cluster).")
    ] = False,
    embedded: Annotated[
        bool, typer.Option("--embedded", help="Start the embedded API server and the cloud on this machine.")
    ] = False,
    advertise: Annotated[
        list[str] | None,
        typer.Option("--advertise-address", help="IP or DNS name edges use to reach the cloud (repeatable)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="Cloud image (default kedge/kedge:<version>).")
    ] = None,
    replicas: Annotated[int, typer.Option("--replicas", help="Cloud replicas (in-cluster).")] = 1,
    service_type: Annotated[
        str, typer.Option("--service-type", help="ClusterIP, NodePort or LoadBalancer.")
    ] = "ClusterIP",
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="cloud.toml override a.b=c (host/embedded).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the manifests; change nothing.")] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for the cloud to be ready.")
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="How long to wait for readiness.")] = "5m",
    no_token: Annotated[bool, typer.Option("--no-token", help="Do not create a join token.")] = False,
    token_ttl: Annotated[str, typer.Option("--token-ttl", help="Lifetime of the printed token.")] = "24h",
    ignore: Annotated[
        str,
        typer.Option(
            "--ignore-preflight-errors", help="Checks to downgrade to warnings: NAME[,NAME...] or all."
        ),
    ] = "",
    patch_daemonsets: Annotated[
        bool,
        typer.Option("--patch-daemonsets", help="Keep existing DaemonSets off edge nodes (node affinity)."),
    ] = False,
    apiserver_port: Annotated[
        int | None, typer.Option("--apiserver-port", help="Embedded API server port (default 6443).")
    ] = None,
    stream_tunnel: Annotated[
        str | None,
        typer.Option(
            "--stream-tunnel",
            help="How API servers reach the stream endpoint (logs, exec): none, direct or dnat (a "
            "privileged DaemonSet on the control-plane hosts; docs/streams.md). Default: direct with "
            "--embedded, else none.",
        ),
    ] = None,
    event_ttl: Annotated[
        str | None,
        typer.Option("--event-ttl", help="Embedded API server: how long Events are kept (default 1h)."),
    ] = None,
    kubeconfig: KubeconfigOpt = None,  # as given to init itself: --embedded refuses it
) -> None:
    if host and embedded:
        raise UsageError(
            "--host and --embedded exclude each other (--embedded already runs the cloud locally)"
        )
    if event_ttl is not None and not embedded:
        raise UsageError("--event-ttl sets the embedded API server's Event lifetime: it needs --embedded")
    if embedded and kubeconfig is not None:
        raise UsageError("--embedded starts its own API server; --kubeconfig does not apply")
    from runtime.cloud.install import init as installer
    from runtime.cloud.install.manifests import InstallOptions, to_yaml

    opts = InstallOptions(
        mode="cluster" if not (host or embedded) else "host",
        replicas=replicas,
        service_type=service_type,
        advertise_addresses=list(advertise or []),
        stream_tunnel=stream_tunnel or ("direct" if embedded else "none"),
    )
    if image:
        opts.image = image
    opts.validate()
    req = installer.InitRequest(
        mode="embedded" if embedded else "host" if host else "cluster", options=opts, root=s.root,
        kubeconfig=s.kubeconfig, sets=sets or [], wait=not no_wait, wait_s=parse_duration(timeout),
        token=not no_token, ttl_s=parse_duration(token_ttl), ignore=ignore.split(","),
        patch_daemonsets=patch_daemonsets, apiserver_port=apiserver_port,
        event_ttl_s=parse_duration(event_ttl) if event_ttl is not None else None,
    )  # fmt: skip
    if dry_run:
        import asyncio  # not before a command is known (issue 14: import diet)

        objs = asyncio.run(installer.manifests(req, _Progress(s.output)))
        if s.output is Format.json:
            render.data(objs, Format.json)
        else:
            print(to_yaml(objs), end="", flush=True)
        return
    _finish(s, installer.install(req, _Progress(s.output)), req.mode)


class _Progress:
    """init's progress (runtime.cloud.install.init.Progress): numbered steps, checks and notes on
    stderr; the applied objects on stdout in table output."""

    def __init__(self, output: Format) -> None:
        self.output = output
        self.steps = render.Steps(0)

    def begin(self, total: int) -> None:
        self.steps = render.Steps(total)

    def step(self, title: str) -> AbstractContextManager[None]:
        return self.steps.step(title)

    def note(self, text: str) -> None:
        render.message(text)

    def checks(self, results: Sequence[CheckResult]) -> None:
        for r in results:
            tag = {"ok": "ok", "warning": "warn", "error": "FAIL"}[r.level]
            render.message(f"  [{tag}] {r.name}: {r.message}")

    def applied(self, lines: Sequence[tuple[str, str]]) -> None:
        if self.output is Format.table:
            for o, a in lines:
                print(f"{o} {a}", flush=True)


def _finish(s: Settings, summary: dict[str, Any], mode: str) -> None:
    if s.output is not Format.table:
        render.data(summary, s.output)
        return
    if mode == "embedded":
        render.message("\nThe embedded control plane is running. Its admin kubeconfig:")
        print(summary["kubeconfig"], flush=True)
        render.message(f"  export KUBECONFIG={summary['kubeconfig']}")
    if "join" in summary:
        render.message(f"\nOn each edge machine run (token {summary['join']['id']} expires "
                       f"{summary['join']['expires']}):")  # fmt: skip
        print(summary["join"]["command"], flush=True)
    render.message(f"\nkedge cloud installed ({mode} mode).")
