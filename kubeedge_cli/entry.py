"""Process entry point. Dispatches `kedge edge run` before typer, rich, lightkube or cryptography load.

The edge runtime is the long-lived process on small devices (design.md §3): its RSS must not carry
the CLI's imports. Everything else goes through the typer app in kubeedge_cli.main.
"""

from __future__ import annotations

import sys


def _is_edge_run(argv: list[str]) -> bool:
    words = [a for a in argv if not a.startswith("-")]
    return words[:2] == ["edge", "run"] and not ({"-h", "--help"} & set(argv))


def run() -> None:
    argv = sys.argv[1:]
    if _is_edge_run(argv):
        try:
            from runtime.edge.launcher import main as edge_main  # light imports only
        except ImportError:  # edge runtime not built yet: fall through to the CLI's error
            pass
        else:
            raise SystemExit(edge_main(argv))
    from kubeedge_cli.main import main

    main()
