"""`kedge status`: health of the roles installed under --root; exit 1 when any is unhealthy.

Edge: asks the running runtime over its 0600 status socket; when it does not answer, reads the files
(config, certificate, cache) and says the runtime is down. The JSON/YAML schema is the same either way:
``{"edge": {...}, "cloud": {...}, "apiserver": {...}}`` with only the installed roles present (the
embedded API server's entry names any failing controller).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kubeedge_cli import render, status_devices, statusview
from kubeedge_cli.options import Format, OutputOpt, RootOpt, settings
from runtime.errors import KedgeError

app = typer.Typer()


def edge_offline(root: Path, why: str) -> dict[str, Any]:
    """The edge status from files alone, in the same schema the runtime serves."""
    from runtime import __version__
    from runtime.config import load_edge
    from runtime.edge import identity
    from runtime.edge.layout import EdgeFiles
    from runtime.edge.metastore import read_stats

    files = EdgeFiles.of(root)
    server, node, db, mqtt = "", "", files.paths.state / "cache.db", "embedded"
    try:
        cfg = load_edge(None, root)
        server, node, db, mqtt = cfg.hub.server, cfg.node.name, Path(cfg.cache.db), cfg.mqtt.mode
    except KedgeError as exc:
        why += f"; config: {exc}"
    return {
        "role": "edge",
        "version": __version__,
        "running": False,
        "healthy": False,
        "since": None,
        "message": why,
        "cloud": {
            "server": server,
            "connected": False,
            "since": None,
            "last_contact": None,
            "backoff": None,
            "peer_kind": "",
            "last_error": "",
            "auth_error": "",
            "outbox": None,
        },
        "node": {
            "name": node,
            "registered": None,
            "ready": None,
            "uid": "",
            "lastReport": None,
            "leaseRenewed": None,
            "lastError": "",
            "removed": None,
        },
        "certificate": {"path": str(files.cert), "notAfter": identity.not_after(files)},
        "cache": read_stats(db)
        or {"path": str(db), "epoch": "", "objects": {}, "bytes": 0, "lastSync": None},
        "pods": [],
        "podsError": "",
        "events": None,  # the runtime's event counters (runtime/edge/events.py) exist only while it runs
        "usage": None,  # resource usage sampling (runtime/edge/usage/): only while it runs
        "runtimeVersion": "",
        "runtimeDown": "",
        "devices": status_devices.offline(mqtt, db),
        "process": None,
    }


def edge_status(root: Path) -> dict[str, Any]:
    from runtime.config import load_edge
    from runtime.edge.statusd import read_status

    try:
        sock = Path(load_edge(None, root).status.socket)
    except KedgeError as exc:
        return edge_offline(root, f"cannot read the edge config: {exc}")
    live = read_status(sock)
    if live is None:
        return edge_offline(root, f"the edge runtime is not running (no answer on {sock})")
    live.setdefault("message", "")
    return live


def cloud_status(root: Path) -> dict[str, Any]:
    from runtime.cloud.status_socket import status

    return status(root)


def _status_of(what: str, root: Path, output: Format) -> None:
    from runtime.config import load_edge

    if what != "devices":
        render.error(
            KedgeError(f"unknown status section {what!r}", hint="try `kedge status devices`"), output
        )
        raise typer.Exit(2)
    status_devices.show(status_devices.read(Path(load_edge(None, root).cache.db)), output)


@app.command(
    help="Health of this machine's kedge roles (cloud link, node, certificate, cache, pods, devices)."
)
def status(
    ctx: typer.Context,
    what: Annotated[
        str | None, typer.Argument(help="`devices`: the edge's device twins from its cache (works offline).")
    ] = None,
    output: OutputOpt = None,
    root: RootOpt = None,
) -> None:
    from runtime.paths import Paths

    s = settings(ctx, output=output, root=root)
    if what is not None:
        _status_of(what, s.root, s.output)
        return
    out: dict[str, Any] = {}
    if Paths.of(s.root, "edge").installed():
        out["edge"] = edge_status(s.root)
    if Paths.of(s.root, "cloud").installed():
        out["cloud"] = cloud_status(s.root)
    if Paths.of(s.root, "apiserver").installed():  # `kedge init --embedded`: server and controllers
        from runtime.apiserver.selfstatus import status as apiserver_status

        out["apiserver"] = apiserver_status(s.root)
    if not out:
        render.error(
            KedgeError(
                f"no kedge role installed under {s.root}", hint="`kedge join` (edge) or `kedge init` (cloud)"
            ),
            s.output,
            root=str(s.root),
        )
        raise typer.Exit(1)
    if s.output is Format.table:
        statusview.print_sections(out)
    else:
        render.data(statusview.for_json(out), s.output)
    if any(r.get("healthy") is False for r in out.values()):
        raise typer.Exit(1)
