"""`kedge token create|list|revoke`: join tokens (`<sha256 of CA>.<JWT>`, KubeEdge's format)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from kubeedge_cli import render
from kubeedge_cli.cluster import connect
from kubeedge_cli.options import Format, Settings, global_options, parse_duration
from runtime.errors import KedgeError

if TYPE_CHECKING:
    from runtime.cloud.pki_store import PKIStore, TokenInfo

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke join tokens.")
NamespaceOpt = Annotated[str, typer.Option("--namespace", help="Where kedge keeps its Secrets.")]
T = TypeVar("T")


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


def _with_store(s: Settings, namespace: str, use: Callable[[PKIStore], Awaitable[T]]) -> T:
    """Every token command: connect (saying which kubeconfig), run `use` on the namespace's token
    store, close the connection."""

    async def main() -> T:
        from runtime.cloud.pki_store import PKIStore

        async with connect(s.kubeconfig, s.root) as client:
            return await use(PKIStore(client, namespace))

    import asyncio  # not before a command is known (issue 14: import diet)

    return asyncio.run(main())


@app.command("create", help="Create a join token; prints the token (or JSON with id, token, expires).")
@global_options("output", "kubeconfig", "root")
def create(
    s: Settings,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime, e.g. 24h, 90m, 7d.")] = "24h",
    description: Annotated[str, typer.Option("--description", help="Free text shown by list.")] = "",
    node: Annotated[
        str, typer.Option("--node", help="Only for this node name (also lets it re-join an existing node).")
    ] = "",
    namespace: NamespaceOpt = "kubeedge",
) -> None:
    seconds = parse_duration(ttl)

    async def create_token(store: PKIStore) -> tuple[TokenInfo, str]:
        async with _installed(namespace):
            return await store.create_token(ttl=seconds, description=description, node=node)

    info, token = _with_store(s, namespace, create_token)
    body = {**info.as_dict(), "token": token}
    if s.output is Format.table:
        render.message(f"token {info.id} expires {body['expires']}" + (f", node {node}" if node else ""))
        print(token, flush=True)
    else:
        render.data(body, s.output)


@app.command("list", help="List join tokens: id, expiry, remaining time, description, node.")
@global_options("output", "kubeconfig", "root")
def list_(s: Settings, namespace: NamespaceOpt = "kubeedge") -> None:
    rows = [t.as_dict() for t in _with_store(s, namespace, lambda store: store.list_tokens())]
    if s.output is Format.table:
        render.table(
            ["id", "expires", "remaining", "description", "node"],
            [[r["id"], r["expires"], r["remaining"], r["description"], r["node"]] for r in rows],
        )
    else:
        render.data(rows, s.output)


@app.command("revoke", help='Revoke a token: the bootstrap server refuses it from now on (401, "revoked").')
@global_options("output", "kubeconfig", "root")
def revoke(
    s: Settings,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id from `kedge token list`.")],
    namespace: NamespaceOpt = "kubeedge",
) -> None:
    info = _with_store(s, namespace, lambda store: store.revoke_token(token_id))
    if s.output is Format.table:
        render.message(f"token {info.id} revoked")
    else:
        render.data(info.as_dict(), s.output)
