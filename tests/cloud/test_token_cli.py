"""`kedge token create/list/revoke` as a user runs them, checked against the bootstrap server."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from kubeedge_cli.options import parse_duration
from runtime.errors import UsageError
from runtime.pki import certs, tokens
from tests.fixtures.apiserver import ApiServer
from tests.fixtures.cloudinit import BootstrapServer, kedge, run_ok


async def _sign(srv: BootstrapServer, token: str, node: str) -> httpx.Response:
    jwt = tokens.check_ca(token, srv.ca.cert_der)
    async with httpx.AsyncClient(base_url=srv.url, verify=srv.ssl_client(), timeout=10) as c:  # type: ignore[arg-type]
        return await c.request(
            "GET", "/edge.crt", headers={"Authorization": f"Bearer {jwt}", "NodeName": node},
            content=certs.make_csr(certs.new_key(), node),
        )  # fmt: skip


async def test_create_list_revoke_expire_round_trip(
    apiserver: ApiServer, bootstrap_server: BootstrapServer
) -> None:
    kc = str(apiserver.kubeconfig)
    made = json.loads(run_ok(["token", "create", "--kubeconfig", kc, "--ttl", "2h", "--description", "lab",
                              "-o", "json"]).stdout)  # fmt: skip
    assert {"id", "token", "expires"} <= set(made)
    assert (await _sign(bootstrap_server, made["token"], "edge-t1")).status_code == 200

    listed = json.loads(run_ok(["token", "list", "--kubeconfig", kc, "-o", "json"]).stdout)
    mine = next(t for t in listed if t["id"] == made["id"])
    assert mine["description"] == "lab" and mine["expires"] == made["expires"]
    assert 7000 < mine["remainingSeconds"] <= 7200
    table = run_ok(["token", "list", "--kubeconfig", kc]).stdout
    assert table.splitlines()[0].split() == ["ID", "EXPIRES", "REMAINING", "DESCRIPTION", "NODE"]
    assert made["id"] in table

    run_ok(["token", "revoke", "--kubeconfig", kc, made["id"]])
    refused = await _sign(bootstrap_server, made["token"], "edge-t2")
    assert refused.status_code == 401 and "revoked" in refused.text
    missing = kedge("token", "revoke", "--kubeconfig", kc, "0123456789abcdef")
    assert missing.returncode == 1 and "not found" in missing.stderr

    short = run_ok(["token", "create", "--kubeconfig", kc, "--ttl", "1s"]).stdout.strip()
    await asyncio.sleep(1.2)  # the thing under test: the 1 s ttl passes
    expired = await _sign(bootstrap_server, short, "edge-t3")
    assert expired.status_code == 401 and "expired" in expired.text

    plain = run_ok(["token", "create", "--kubeconfig", kc, "--node", "edge-t4"])
    assert plain.stdout.count(".") == 3 and len(plain.stdout.strip().splitlines()) == 1  # just the token
    assert "node edge-t4" in plain.stderr


def test_parse_duration() -> None:
    assert parse_duration("24h") == 86400
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172800
    for bad in ("", "h", "10", "-1h", "1x"):
        with pytest.raises(UsageError):
            parse_duration(bad)
