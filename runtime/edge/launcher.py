"""`kedge edge run [--root R] [--config F] [--set a.b=c] [--foreground] [--no-pods] [--mqtt M]`.

Dispatched by kubeedge_cli/entry.py so the long-lived edge process never imports typer, rich,
lightkube or cryptography (design.md §3). Here: the command's one parser (argparse; `kedge edge run
--help` comes here too), logging, glibc arenas capped at 2, the fd limit raised, a pid file (refusing
to start twice), the event loop edge.toml names (asyncio's own by default: runtime/eventloop.py),
SIGTERM/SIGINT → graceful stop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from runtime import eventloop
from runtime.fsutil import pid_alive, read_pid, write_atomic

M_ARENA_MAX = -8  # glibc mallopt parameter


def _limit_arenas() -> None:
    """glibc's malloc arenas capped at 2 (threads — sqlite, docker — otherwise get 64 MiB arenas each).

    glibc reads MALLOC_ARENA_MAX when the process starts, so when whoever started the edge set it
    (`kedge join`'s spawn and its systemd unit do) there is nothing left to do. Otherwise, without a
    re-exec, mallopt through ctypes — imported only then: ctypes is 0.4 MB of the idle edge's RSS."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = "2"  # for the processes the edge starts
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 2)


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


class _Help(argparse.HelpFormatter):
    """`Usage: kedge edge run …`, as the other commands' help (click) begins."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: ")


def parser() -> argparse.ArgumentParser:
    """The one parser of `kedge edge run` (kubeedge_cli/commands/edge.py hands its arguments here):
    argparse, so the long-lived edge process never loads typer/click (design.md §3). It also takes
    the global options (kubeedge_cli/options.py), as they may come before or after the command."""
    p = argparse.ArgumentParser(
        prog="kedge edge run", formatter_class=_Help,
        description="Run the edge runtime (cloud link, cache, node status, pods) in this process until "
        "SIGTERM.",
    )  # fmt: skip
    p.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    p.add_argument("--config", default=None, help="Edge config (default <root>/etc/kedge/edge.toml).")
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="A.B=C", help="Override a config key."
    )
    p.add_argument(
        "--foreground", action="store_true",
        help="Accepted for scripts: `kedge edge run` always runs in the foreground, attached to this "
        "terminal (`kedge join` starts it in the background).",
    )  # fmt: skip
    p.add_argument("--no-pods", action="store_true", help="Do not host the pod manager.")
    p.add_argument(
        "--mqtt", default=None, metavar="MODE",
        help="Device plane broker: embedded | external=URL | off (default: config).",
    )  # fmt: skip
    p.add_argument(
        "--dmi", default=None, metavar="on|off|SOCKET",
        help="KubeEdge DMI for gRPC mappers (default: config).",
    )  # fmt: skip
    p.add_argument(
        "--root", default=os.environ.get("KEDGE_ROOT", "/"),
        help="Root every kedge path derives from (default /, or $KEDGE_ROOT).",
    )  # fmt: skip
    p.add_argument("-v", "--verbose", action="count", default=0, help="More log detail.")
    p.add_argument("-o", "--output", default=None, help=argparse.SUPPRESS)
    p.add_argument("--kubeconfig", default=None, help=argparse.SUPPRESS)
    return p


def parse(argv: list[str]) -> argparse.Namespace:
    from runtime.logs import normalize

    p = parser()
    args = p.parse_intermixed_args(normalize(argv))
    if args.words[:2] != ["edge", "run"] or len(args.words) > 2:
        p.error(f"unexpected arguments: {' '.join(args.words)}")
    return args


def claim_pid_file(path: Path) -> None:
    """Write our pid; refuse when a live process holds the file (a stale one is taken over)."""
    from runtime.errors import UsageError

    other = read_pid(path)
    if other is not None and other != os.getpid() and pid_alive(other):
        raise UsageError(
            f"an edge runtime is already running (pid {other}, {path})",
            hint="stop it first, or use `kedge status`",
        )
    write_atomic(path, f"{os.getpid()}\n", mode=0o644)  # readers never see it empty


def mqtt_sets(flag: str | None) -> list[str]:
    """``--mqtt embedded|off|external=URL`` as config overrides (UsageError for anything else)."""
    if flag is None:
        return []
    mode, _, url = flag.partition("=")
    if mode not in ("embedded", "external", "off") or (mode == "external") != bool(url):
        from runtime.errors import UsageError

        raise UsageError(f"--mqtt {flag!r}: expected embedded, external=URL or off")
    return [f"mqtt.mode={mode}", *([f"mqtt.url={url}"] if url else [])]


def dmi_sets(flag: str | None) -> list[str]:
    """``--dmi on|off|SOCKET`` as config overrides: on (socket from the config), off, or on at SOCKET."""
    if flag is None:
        return []
    if flag in ("on", "off"):
        return [f"dmi.enabled={'true' if flag == 'on' else 'false'}"]
    if not flag.startswith("/"):
        from runtime.errors import UsageError

        raise UsageError(f"--dmi {flag!r}: expected on, off or an absolute socket path")
    return ["dmi.enabled=true", f"dmi.socket={flag}"]


def main(argv: list[str]) -> int:
    args = parse(argv)
    _limit_arenas()
    raise_nofile()
    from runtime import logs
    from runtime.config import load_edge
    from runtime.errors import KedgeError
    from runtime.paths import Paths

    logs.setup(logging.INFO, args.verbose)
    root = Path(args.root)
    pid_file = Paths.of(root, "edge").pid_file
    try:
        cfg = load_edge(
            Path(args.config) if args.config else None,
            root,
            [*args.sets, *mqtt_sets(args.mqtt), *dmi_sets(args.dmi)],
        )
        claim_pid_file(pid_file)
    except KedgeError as exc:
        sys.stderr.write(f"error: {exc}\n" + (f"  hint: {exc.hint}\n" if exc.hint else ""))
        return 2
    try:
        return _serve(cfg, root, pods=not args.no_pods, loop=cfg.event_loop)
    finally:
        if read_pid(pid_file) == os.getpid():
            with contextlib.suppress(OSError):
                pid_file.unlink()


def _serve(cfg: object, root: Path, *, pods: bool, loop: eventloop.Loop) -> int:
    from runtime.edge.run import run
    from runtime.errors import KedgeError

    # What is alive now (modules, classes, functions: most of the edge's objects) lives as long as the
    # process: out of the cyclic collector's full passes, which otherwise walk it all and stall the loop
    # (tens of ms on a loaded machine, a p99 of DMI's report → stored; issue 18). Collected first, so
    # the imports' garbage is freed rather than kept for good.
    gc.collect()
    gc.freeze()

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(cfg, root, stop, pods=pods)  # type: ignore[arg-type]

    try:
        eventloop.run(amain(), loop=loop)  # edge.toml event_loop: asyncio's by default (runtime/eventloop.py)
    except KedgeError as exc:
        sys.stderr.write(f"error: {exc}\n" + (f"  hint: {exc.hint}\n" if exc.hint else ""))
        return _exit_code(exc)
    return 0


def _exit_code(exc: BaseException) -> int:
    """design.md §7's codes (the CLI's table lives in kubeedge_cli, which the runtime never imports)."""
    from runtime.errors import AuthError, ConfigError, Unreachable, UsageError

    for cls, code in ((ConfigError, 2), (UsageError, 2), (Unreachable, 4), (AuthError, 5)):
        if isinstance(exc, cls):
            return code
    return 1
