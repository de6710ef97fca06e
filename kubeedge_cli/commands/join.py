"""`kedge join`: make this machine an edge node of a kedge (or KubeEdge) cloud.

Named preflight checks → numbered steps → the runtime running and the node Ready. Glue only: the
checks and steps live in runtime/edge/join/.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kubeedge_cli import render
from kubeedge_cli.options import Format, OutputOpt, RootOpt, settings
from runtime.errors import KedgeError, PreflightFailed, UsageError

if TYPE_CHECKING:
    import asyncio

app = typer.Typer()


def _labels(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--labels {item!r}: expected key=value[,key=value…]")
        out[key.strip()] = value.strip()
    return out


def _docker_host(sets: list[str]) -> str:
    import os

    for s in sets:
        key, _, value = s.partition("=")
        if key.strip() == "runtime.docker_host":
            return value.strip()
    return os.environ.get("DOCKER_HOST", "")


@app.command(help="Join this machine to a cloud as an edge node; converges when run again.")
def join(
    ctx: typer.Context,
    token: Annotated[
        str,
        typer.Option(envvar="KEDGE_TOKEN", help="Join token (`kedge token create`, or `keadm gettoken`)."),
    ],
    server: Annotated[str, typer.Option(envvar="KEDGE_SERVER", help="Cloud HOST[:PORT] (port 10000).")],
    cert_port: Annotated[int, typer.Option(help="Certificate server port on the same host.")] = 10002,
    node_name: Annotated[str | None, typer.Option(help="Node name (default: host name).")] = None,
    labels: Annotated[str | None, typer.Option(help="Node labels k=v,k2=v2.")] = None,
    with_edge_taint: Annotated[
        bool, typer.Option("--with-edge-taint", help="Taint node-role.kubernetes.io/edge:NoSchedule.")
    ] = False,
    mqtt: Annotated[
        str,
        typer.Option(
            help="Device plane broker: embedded (in the edge process, 127.0.0.1:1883; more listeners "
            "with --set mqtt.listen=HOST:PORT,…) | external=URL (tcp:// or ssl://, e.g. mosquitto) | off."
        ),
    ] = "embedded",
    dmi: Annotated[
        str | None,
        typer.Option(
            help="KubeEdge DMI for gRPC mappers: on (socket <root>/etc/kubeedge/dmi.sock) | off | SOCKET "
            "path (default: off)."
        ),
    ] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: a.b=c")] = None,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Run the runtime in this process.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Run the checks and print the plan; change nothing.")
    ] = False,
    ignore_preflight_errors: Annotated[
        str | None, typer.Option(help="Comma-separated check names to downgrade, or 'all'.")
    ] = None,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for Ready.")] = 60.0,
    root: RootOpt = None,
    output: OutputOpt = None,
) -> None:
    from runtime.edge import join as rj
    from runtime.edge.join import Joiner
    from runtime.edge.launcher import dmi_sets

    st = settings(ctx, output=output, root=root)
    opts = rj.JoinOptions(
        token=token,
        server=server,
        root=Path(st.root),
        cert_port=cert_port,
        node_name=node_name or "",
        labels=_labels(labels),
        with_edge_taint=with_edge_taint,
        mqtt=mqtt,
        sets=[*(sets or []), *dmi_sets(dmi)],
        foreground=foreground,
        docker_host=_docker_host(list(sets or [])),
        ready_timeout=ready_timeout,
        ignore={s.strip() for s in (ignore_preflight_errors or "").split(",") if s.strip()},
    )
    joiner = Joiner(opts)
    joiner.build_config()  # a bad --set fails now, before any check or change
    import asyncio  # not before a command is known (issue 14: import diet)

    checks = asyncio.run(rj.preflight(opts))
    bad = rj.failed(checks)
    if st.output is Format.table:
        for c in checks:
            mark = {"ok": "ok", "warning": "WARN", "error": "FAIL", "ignored": "ignored"}[c.verdict]
            render.message(f"[preflight] {c.name:<15} {mark:<7} {c.detail}")
            if c.hint and c.verdict != "ok":
                render.message(f"{'':28}hint: {c.hint}")
    if bad:
        raise PreflightFailed(
            f"preflight failed: {', '.join(c.name for c in bad)}",
            failed=[c.name for c in bad],
            checks=[c.as_dict() for c in checks],
            hint="fix the checks above, or --ignore-preflight-errors=" + ",".join(c.name for c in bad),
        )
    steps = joiner.steps()
    if dry_run:
        plan = {
            "checks": [c.as_dict() for c in checks],
            "steps": [s.title for s in steps],
            "node": opts.node_name,
            "server": opts.hub_addr,
        }
        if st.output is Format.table:
            for i, s in enumerate(steps, 1):
                render.message(f"[dry-run] would [{i}/{len(steps)}] {s.title}")
        else:
            render.data(plan, st.output)
        return
    try:
        notes = asyncio.run(_execute(joiner, len(steps)))
    except KedgeError as exc:
        undone = joiner.undo()
        if undone:
            render.message(f"join failed: removed the {len(undone)} things it had set up under {opts.root}")
            exc.hint = "fix the cause (above), then run the same `kedge join` again"
        raise
    result = {"node": opts.node_name, "server": opts.hub_addr, "steps": notes}
    if st.output is not Format.table:
        render.data(result, st.output)
    else:
        render.message(f"node {opts.node_name} joined {opts.hub_addr}: {notes[-1] if notes else ''}")


async def _execute(joiner: object, total: int) -> list[str]:
    from runtime.edge.join import Joiner

    assert isinstance(joiner, Joiner)
    progress = render.Steps(total)
    notes: list[str] = []
    import asyncio

    runtime_task: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    for step in joiner.steps():
        if step.run == joiner.wait_ready and joiner.opts.foreground:
            runtime_task = asyncio.create_task(_run_runtime(joiner, stop), name="edge-runtime")
        with progress.step(step.title):
            note = await step.run()
        if note:
            render.message(f"      {note}")
            notes.append(note)
    if runtime_task is not None:
        render.message("edge runtime running in the foreground; Ctrl-C or SIGTERM stops it")
        await runtime_task
    return notes


async def _run_runtime(joiner: object, stop: asyncio.Event) -> None:
    from runtime.config import load_edge
    from runtime.edge.join import Joiner
    from runtime.edge.run import run

    assert isinstance(joiner, Joiner)
    import asyncio

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    from runtime.edge.launcher import claim_pid_file

    cfg = load_edge(None, joiner.opts.root)
    pid_file = joiner.files.paths.pid_file
    claim_pid_file(pid_file)  # so `kedge reset` and a second `kedge edge run` see this runtime
    try:
        await run(cfg, joiner.opts.root, stop)
    finally:
        pid_file.unlink(missing_ok=True)
