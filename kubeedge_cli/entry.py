"""Process entry point. Dispatches `kedge edge run` before typer, rich, lightkube or cryptography load.

The edge runtime is the long-lived process on small devices (design.md §3): its RSS must not carry
the CLI's imports. Everything else goes through the typer app in kubeedge_cli.main.
"""

from __future__ import annotations

import sys

# Global options that take a value (kubeedge_cli/options.py): their value is not a command word,
# so `kedge --root /x edge run` and `kedge -o json edge run` still dispatch.
_VALUED = frozenset({"-o", "--output", "--kubeconfig", "--root"})


def _is_edge_run(argv: list[str]) -> bool:
    if {"-h", "--help"} & set(argv):
        return False
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
            if len(words) == 2:
                break
    return words == ["edge", "run"]


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


if __name__ == "__main__":  # PyInstaller runs this file as the script (build.spec)
    run()
