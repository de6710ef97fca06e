"""`kedge reset [cloud|edge|all]`: undo init or join on this machine (design.md §3).

With no role it resets the one role installed under --root and refuses (exit 2) when both are.
Prompts on a TTY, needs --force otherwise; continues past errors and exits 6 if any step failed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from kubeedge_cli import render
from kubeedge_cli.commands.cloud import connect
from kubeedge_cli.options import Format, KubeconfigOpt, Settings, global_options
from runtime.errors import KedgeError, PartialFailure, UsageError

app = typer.Typer()
# The edge role's reset lives with the edge runtime: `def reset_edge(root: Path, *, dry_run: bool)
# -> list[dict]` with keys object/result/error (same rows as the cloud's).


def _installed(root: Path) -> list[str]:
    from runtime.paths import Paths

    cloud = Paths.of(root, "cloud").installed() or Paths.of(root, "apiserver").installed()  # embedded data
    return [role for role, here in (("cloud", cloud), ("edge", Paths.of(root, "edge").installed())) if here]


@app.command()
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
    """Remove what `kedge init` (cloud) or `kedge join` (edge) set up under --root."""
    installed = _installed(s.root)
    if role is None:
        if len(installed) > 1:
            raise UsageError(f"both cloud and edge are installed under {s.root}: say `kedge reset cloud`, "
                             "`kedge reset edge` or `kedge reset all`")  # fmt: skip
        if not installed and kubeconfig is None:
            render.message(f"nothing installed under {s.root}; nothing to reset")
            return
        role = installed[0] if installed else "cloud"
    if role not in ("cloud", "edge", "all"):
        raise UsageError(f"reset {role}: expected cloud, edge or all")
    roles = ["cloud", "edge"] if role == "all" else [role]
    if kubeconfig is None:  # a role not installed here has nothing to reset (without a cluster named)
        roles = [r for r in roles if r in installed]
        if not roles:
            render.message(f"no {role if role != 'all' else 'kedge role'} installed under {s.root}; "
                           "nothing to reset")  # fmt: skip
            return
    if not dry_run and not force:
        if not sys.stdin.isatty():
            raise UsageError("reset is destructive: pass --force (not on a terminal, cannot ask)")
        what = (
            " and ".join(roles)
            + (", the CA" if purge else "")
            + (", the CRDs and all Devices" if delete_crds else "")
        )
        if purge:
            render.warn("--purge deletes the CA: every joined edge loses trust and must re-join")
        if not typer.confirm(f"Reset the {what} under {s.root}?", default=False):
            raise typer.Exit(1)
    rows: list[dict[str, Any]] = []
    if "cloud" in roles:
        from runtime.cloud.init_procs import exclusive

        with exclusive(s.root, "reset"):
            import asyncio  # not before a command is known (issue 14: import diet)

            rows += asyncio.run(
                _reset_cloud(_kubeconfig(s.kubeconfig, s.root), s.root, dry_run, delete_crds, purge)
            )
    if "edge" in roles:
        from runtime.edge.reset import reset_edge

        rows += reset_edge(s.root, dry_run=dry_run, prune_images=prune_images, delete_node=delete_node)
    failed = [r for r in rows if r["result"] == "failed"]
    if s.output is Format.table:
        render.table(["object", "result"], [[r["object"], r["result"]] for r in rows])
        for r in failed:
            render.warn(f"{r['object']}: {r.get('error', '')}")
    else:
        render.data(rows, s.output)
    if failed:
        raise PartialFailure(f"reset finished with {len(failed)} error(s)",
                             errors=[f"{r['object']}: {r.get('error', '')}" for r in failed],
                             hint="fix the cause and run `kedge reset` again (safe to repeat)")  # fmt: skip


def _kubeconfig(flag: Path | None, root: Path) -> Path | None:
    """--kubeconfig, else the one init recorded (the cluster the cloud was installed into)."""
    from runtime.cloud.init_run import InstallRecord

    record = InstallRecord.load(root)
    if flag is None and record and record.kubeconfig and os.path.isfile(record.kubeconfig):
        return Path(record.kubeconfig)
    return flag


async def _reset_cloud(
    kubeconfig: Path | None, root: Path, dry_run: bool, delete_crds: bool, purge: bool
) -> list[dict[str, Any]]:
    from runtime.cloud import init_reset
    from runtime.cloud.init_run import InstallRecord

    record = InstallRecord.load(root)
    namespace = record.namespace if record else "kubeedge"
    items = [*init_reset.stop_unit(root, dry_run), init_reset.stop_local(root, "cloud", dry_run)]
    embedded = init_reset.is_embedded(root, record)
    # an embedded API server that is not running holds nothing to delete (its data stays until --purge)
    reachable = not (embedded and init_reset.init_procs.running_pid(root, "apiserver") is None)
    if reachable:
        try:
            client = connect(kubeconfig, root)
        except KedgeError as exc:
            items.append(init_reset.ResetItem("Kubernetes API", "failed", str(exc)))
            reachable = False
    if reachable:
        async with client:
            items += await init_reset.delete_cluster_objects(
                client, namespace, delete_crds=delete_crds, purge=purge, dry_run=dry_run
            )
    if embedded:
        items.append(init_reset.stop_local(root, "apiserver", dry_run))
    items += init_reset.local_cleanup(root, record, purge=purge, dry_run=dry_run)
    return [i.as_dict() for i in items]
