"""`kedge reset [cloud|edge|all]`: undo init or join on this machine (design.md §3).

With no role it resets the one role installed under --root and refuses (exit 2) when both are.
Prompts on a TTY, needs --force otherwise; continues past errors and exits 6 if any step failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kubeedge_cli import render
from kubeedge_cli.options import Format, KubeconfigOpt, Settings, global_options
from runtime.errors import PartialFailure, UsageError

app = typer.Typer()
# Each role's reset lives with its runtime and returns the same rows (object/result/error):
# runtime/cloud/install/reset.py: reset_cloud, runtime/edge/reset.py: reset_edge.


def _installed(root: Path) -> list[str]:
    from runtime.paths import Paths

    cloud = Paths.of(root, "cloud").installed() or Paths.of(root, "apiserver").installed()  # embedded data
    return [role for role, here in (("cloud", cloud), ("edge", Paths.of(root, "edge").installed())) if here]


@app.command(help="Remove what `kedge init` (cloud) or `kedge join` (edge) set up under --root.")
@global_options("output", "kubeconfig", "root")
def reset(
    s: Settings,
    role: Annotated[
        str | None, typer.Argument(help="cloud, edge or all (default: the installed one).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed.")] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Do not ask (required when not on a TTY).")
    ] = False,
    delete_crds: Annotated[
        bool, typer.Option("--delete-crds", help="Also delete kedge's CRDs and every Device/DeviceModel.")
    ] = False,
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the CA and namespace: every joined edge loses trust.")
    ] = False,
    prune_images: Annotated[
        bool, typer.Option("--prune-images", help="Edge: also remove the images kedge's pods used.")
    ] = False,
    delete_node: Annotated[
        bool,
        typer.Option("--delete-node", help="Edge: also delete this node's Node object (own certificate)."),
    ] = False,
    kubeconfig: KubeconfigOpt = None,  # as given to reset itself: with nothing installed, reset that cluster
) -> None:
    roles = _roles(s.root, role, kubeconfig)
    if not roles:
        return
    if not dry_run and not force:
        _confirm(s.root, roles, purge=purge, delete_crds=delete_crds)
    rows: list[dict[str, Any]] = []
    if "cloud" in roles:
        from runtime.cloud.install.reset import reset_cloud

        rows += reset_cloud(s.kubeconfig, s.root, dry_run=dry_run, delete_crds=delete_crds, purge=purge,
                            note=render.message)  # fmt: skip
    if "edge" in roles:
        from runtime.edge.reset import reset_edge

        rows += reset_edge(s.root, dry_run=dry_run, prune_images=prune_images, delete_node=delete_node)
    _render(rows, s.output)


def _roles(root: Path, role: str | None, kubeconfig: Path | None) -> list[str]:
    """The roles to reset: the one named (all: both), or the one installed under root; [] (said on
    stderr) when there is nothing to reset. Without --kubeconfig a role not installed here has
    nothing to reset."""
    installed = _installed(root)
    if role is None:
        if len(installed) > 1:
            raise UsageError(f"both cloud and edge are installed under {root}: say `kedge reset cloud`, "
                             "`kedge reset edge` or `kedge reset all`")  # fmt: skip
        if not installed and kubeconfig is None:
            render.message(f"nothing installed under {root}; nothing to reset")
            return []
        role = installed[0] if installed else "cloud"
    if role not in ("cloud", "edge", "all"):
        raise UsageError(f"reset {role}: expected cloud, edge or all")
    roles = ["cloud", "edge"] if role == "all" else [role]
    if kubeconfig is None:
        roles = [r for r in roles if r in installed]
        if not roles:
            render.message(f"no {role if role != 'all' else 'kedge role'} installed under {root}; "
                           "nothing to reset")  # fmt: skip
    return roles


def _confirm(root: Path, roles: list[str], *, purge: bool, delete_crds: bool) -> None:
    """Ask on a terminal (exit 1 on no); refuse without --force elsewhere."""
    if not sys.stdin.isatty():
        raise UsageError("reset is destructive: pass --force (not on a terminal, cannot ask)")
    what = (
        " and ".join(roles)
        + (", the CA" if purge else "")
        + (", the CRDs and all Devices" if delete_crds else "")
    )
    if purge:
        render.warn("--purge deletes the CA: every joined edge loses trust and must re-join")
    if not typer.confirm(f"Reset the {what} under {root}?", default=False):
        raise typer.Exit(1)


def _render(rows: list[dict[str, Any]], output: Format) -> None:
    """The rows as a table (failures repeated as warnings) or data; exit 6 when a step failed."""
    failed = [r for r in rows if r["result"] == "failed"]
    if output is Format.table:
        render.table(["object", "result"], [[r["object"], r["result"]] for r in rows])
        for r in failed:
            render.warn(f"{r['object']}: {r.get('error', '')}")
    else:
        render.data(rows, output)
    if failed:
        raise PartialFailure(f"reset finished with {len(failed)} error(s)",
                             errors=[f"{r['object']}: {r.get('error', '')}" for r in failed],
                             hint="fix the cause and run `kedge reset` again (safe to repeat)")  # fmt: skip
