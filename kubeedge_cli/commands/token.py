"""`kedge token create|list|revoke`: join tokens (`<sha256 of CA>.<JWT>`, KubeEdge's format)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Annotated

import typer

from kubeedge_cli import render
from kubeedge_cli.commands.cloud import connect
from kubeedge_cli.options import Format, KubeconfigOpt, OutputOpt, RootOpt, settings
from runtime.errors import KedgeError, UsageError

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke join tokens.")
_DUR = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
NamespaceOpt = Annotated[str, typer.Option("--namespace", help="Where kedge keeps its Secrets.")]


def parse_duration(text: str) -> float:
    """`24h`, `90m`, `1h30m`, `2d`, `45s` → seconds."""
    s = text.strip().lower()
    parts = _DUR.findall(s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise UsageError(f"--ttl {text}: expected a duration like 24h, 90m, 1h30m or 2d")
    seconds = sum(float(n) * {"d": 86400, "h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"--ttl {text}: must be positive")
    return seconds


@contextlib.asynccontextmanager
async def _installed(namespace: str) -> AsyncIterator[None]:
    """A missing namespace means kedge's cloud was never installed here: say so, with the fix."""
    from runtime.kube.errors import KubeNotFound

    try:
        yield
    except KubeNotFound as exc:
        raise KedgeError(
            f"{exc}", hint=f"install the cloud first (`kedge init`); namespace {namespace}"
        ) from exc


@app.command("create")
def create(
    ctx: typer.Context,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 24h, 90m, 7d.")] = "24h",
    description: Annotated[str, typer.Option("--description", help="Free text shown by list.")] = "",
    node: Annotated[
        str, typer.Option("--node", help="Only for this node name (also lets it re-join an existing node).")
    ] = "",
    namespace: NamespaceOpt = "kubeedge",
    output: OutputOpt = None,
    kubeconfig: KubeconfigOpt = None,
    root: RootOpt = None,
) -> None:
    """Create a join token; prints the token (or JSON with id, token, expires)."""
    s = settings(ctx, output=output, kubeconfig=kubeconfig, root=root)
    seconds = parse_duration(ttl)

    async def main() -> None:
        from runtime.pki.store import PKIStore

        async with connect(s.kubeconfig, s.root) as client, _installed(namespace):
            info, token = await PKIStore(client, namespace).create_token(
                ttl=seconds, description=description, node=node
            )
        body = {**info.as_dict(), "token": token}
        if s.output is Format.table:
            render.message(f"token {info.id} expires {body['expires']}" + (f", node {node}" if node else ""))
            print(token, flush=True)
        else:
            render.data(body, s.output)

    asyncio.run(main())


@app.command("list")
def list_(
    ctx: typer.Context,
    namespace: NamespaceOpt = "kubeedge",
    output: OutputOpt = None,
    kubeconfig: KubeconfigOpt = None,
    root: RootOpt = None,
) -> None:
    """List join tokens: id, expiry, remaining time, description, node."""
    s = settings(ctx, output=output, kubeconfig=kubeconfig, root=root)

    async def main() -> None:
        from runtime.pki.store import PKIStore

        async with connect(s.kubeconfig, s.root) as client:
            infos = await PKIStore(client, namespace).list_tokens()
        rows = [t.as_dict() for t in infos]
        if s.output is Format.table:
            render.table(
                ["id", "expires", "remaining", "description", "node"],
                [[r["id"], r["expires"], r["remaining"], r["description"], r["node"]] for r in rows],
            )
        else:
            render.data(rows, s.output)

    asyncio.run(main())


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id from `kedge token list`.")],
    namespace: NamespaceOpt = "kubeedge",
    output: OutputOpt = None,
    kubeconfig: KubeconfigOpt = None,
    root: RootOpt = None,
) -> None:
    """Revoke a token: the bootstrap server refuses it from now on (401, "revoked")."""
    s = settings(ctx, output=output, kubeconfig=kubeconfig, root=root)

    async def main() -> None:
        from runtime.pki.store import PKIStore

        async with connect(s.kubeconfig, s.root) as client:
            info = await PKIStore(client, namespace).revoke_token(token_id)
        if s.output is Format.table:
            render.message(f"token {info.id} revoked")
        else:
            render.data(info.as_dict(), s.output)

    asyncio.run(main())
