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


def _die_with_bootloader() -> None:
    """A one-file PyInstaller build runs Python in a child of its bootloader, which forwards signals
    but cannot forward SIGKILL: have the kernel kill this process when the bootloader dies, so that
    `kill -9` of the kedge a user started stops kedge, as it does when run from source. Armed only when
    the parent really is that bootloader: never in the one-folder build (scripts/build.sh), where
    Python runs in the process the user started and its parent may be a `kedge init` that exits."""
    if not getattr(sys, "frozen", False) or not sys.platform.startswith("linux"):
        return
    import os

    here = os.path.dirname(os.path.realpath(sys.executable))
    if os.path.realpath(getattr(sys, "_MEIPASS", here)) in (here, os.path.join(here, "_internal")):
        return  # one-folder: the bundle lives beside the executable, no bootloader parent
    parent = os.getppid()
    try:
        if os.readlink(f"/proc/{parent}/exe") != os.readlink("/proc/self/exe"):
            return
    except OSError:
        return
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the bootloader was gone before the call
        os._exit(1)


def run() -> None:
    _die_with_bootloader()
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
