"""The Kubernetes cluster a command talks to (shared by init, reset and token; not a command)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kubeedge_cli import render

if TYPE_CHECKING:
    from runtime.kube.client import KubeClient


def connect(kubeconfig: Path | None, root: Path) -> KubeClient:
    """KubeClient by the usual lookup, else the admin kubeconfig `kedge init --embedded` wrote under
    `root` (runtime.cloud.install.steps.connect); says which kubeconfig is used (design.md §7)."""
    from runtime.cloud.install.steps import connect, using

    client = connect(kubeconfig, root)
    render.message(using(client))
    return client
