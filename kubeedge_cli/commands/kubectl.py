"""`kedge kubectl …`: kubectl against kedge's cluster (as `k3s kubectl`), with the right kubeconfig.

Every argument after `kubectl` is kubectl's. The kubeconfig: `--kubeconfig` given before `kubectl`,
else $KUBECONFIG, else the embedded API server's admin kubeconfig under --root, else the one `kedge init`
recorded; kubectl's own default otherwise. kedge never needs kubectl; when it is missing, say where to
get it.
"""

from __future__ import annotations

import os
import shutil

import typer

from kubeedge_cli.options import settings
from runtime.errors import KedgeError

app = typer.Typer()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
    help="Run kubectl with kedge's kubeconfig (arguments are kubectl's; `kedge kubectl --help` is kubectl's)",
)
def kubectl(ctx: typer.Context) -> None:
    from runtime.cloud.install.steps import local_kubeconfig

    exe = shutil.which("kubectl")
    if exe is None:
        raise KedgeError(
            "kubectl is not installed (kedge does not bundle it)",
            hint="Debian/Ubuntu: `apt-get install kubernetes-client`; any OS: "
            "https://kubernetes.io/docs/tasks/tools/ — kedge itself never needs it",
        )
    s = settings(ctx)
    env = dict(os.environ)
    chosen = s.kubeconfig or (None if env.get("KUBECONFIG") else local_kubeconfig(s.root))
    if chosen is not None:
        env["KUBECONFIG"] = str(chosen)
    os.execve(exe, [exe, *ctx.args], env)
