"""The rough edges of issue 14 that need a running kedge: one cloud (`kedge init --embedded`) and one
joined edge (tests/fixtures/e2e.py), driven as a user drives them — message, exit code, and what is
left behind. The rest (no cloud needed) is in tests/unit/test_cli_rough_edges.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fixtures.e2e import E2E, alive, kedge
from tests.fixtures.wait import eventually


def walk_keys(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [k for k, v in obj.items() for k in (k, *walk_keys(v))]
    if isinstance(obj, list):
        return [k for v in obj for k in walk_keys(v)]
    return []


def one_error(stderr: str) -> tuple[str, str]:
    """The one `error:` line and the `hint:` under it (progress and preflight lines may precede them)."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    at = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(at) == 1 and at[0] + 2 == len(lines) and lines[-1].startswith("  hint: "), stderr
    return lines[-2], lines[-1].strip()


def test_second_cloud_and_other_apiserver_port_are_refused(e2e: E2E, tmp_path: Path) -> None:
    cloud = e2e.cloud
    pid = cloud.pid("cloud")
    again = kedge("cloud", "run", "--root", str(cloud.root), check=False, timeout=60)
    assert again.returncode == 2
    error, hint = one_error(again.stderr)
    assert f"already running under {cloud.root} (pid {pid}" in error
    assert f"`kedge status --root {cloud.root}`" in hint
    assert cloud.pid("cloud") == pid and alive(pid)  # the running cloud and its pid file untouched

    # another root, the same hub port: the bind fails, said in one line
    other = kedge("cloud", "run", "--root", str(tmp_path), "--kubeconfig", str(cloud.kubeconfig),
                  "--set", f"hub.websocket_port={cloud.hub_port}", "--set", "hub.cert_port=0",
                  "--set", "stream.port=0", "--set", "metrics_address=127.0.0.1:0", check=False,
                  timeout=60)  # fmt: skip
    assert other.returncode == 1
    error, hint = one_error(other.stderr)
    assert f"kedge cloud hub: cannot listen on 0.0.0.0:{cloud.hub_port}" in error and "in use" in error
    assert "cloudcore" in hint and "hub.websocket_port" in hint

    port = str(cloud.api_port + 1)
    moved = kedge("init", "--embedded", "--root", str(cloud.root), "--apiserver-port", port, "--no-token",
                  check=False)  # fmt: skip
    assert moved.returncode == 2, moved.stderr
    error, hint = one_error(moved.stderr)
    assert (
        f"already runs on port {cloud.api_port}" in error
        and f"--apiserver-port {cloud.api_port + 1}" in error
    )
    assert f"`kedge reset cloud --root {cloud.root}`" in hint


def test_cloud_status_is_rendered_like_the_edges(e2e: E2E) -> None:
    cloud, edge = e2e.cloud, e2e.edge
    table = kedge("status", "--root", str(cloud.root)).stdout
    assert table.startswith("CLOUD")
    assert "edges          1 connected" in table and "health         healthy" in table
    assert "None" not in table and "{" not in table and "[" not in table  # no Python reprs
    node_row = next(line for line in table.splitlines() if line.startswith(edge.node))
    assert "kedge" in node_row and "ago" in node_row
    body = json.loads(kedge("status", "--root", str(cloud.root), "-o", "json").stdout)["cloud"]
    assert body["since"].endswith("Z") and body["certificates"]["ca"]["notAfter"].endswith("Z")
    assert body["edges"][0]["since"].endswith("Z")
    assert not [k for k in walk_keys(body) if "_" in k], "camelCase keys only"
    edge_body = json.loads(kedge("status", "--root", str(edge.root), "-o", "json").stdout)["edge"]
    assert not [k for k in walk_keys(edge_body) if "_" in k and k != "outboxDropped"], "camelCase keys only"
    assert edge_body["cloud"]["peerKind"] == "kedge" and edge_body["cloud"]["since"].endswith("Z")


def test_pod_status_shows_the_reason_kubectl_shows(e2e: E2E) -> None:
    cloud, edge = e2e.cloud, e2e.edge
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nopull"},
           "spec": {"nodeName": edge.node, "terminationGracePeriodSeconds": 0, "containers": [
               {"name": "c", "image": "kedge.invalid/none:1", "imagePullPolicy": "Always"}]}}  # fmt: skip
    cloud.kubectl("apply", "-f", "-", stdin=json.dumps(pod))
    try:
        row = eventually(
            lambda: next((line for line in kedge("status", "--root", str(edge.root), check=False).stdout
                          .splitlines() if line.startswith("default ") and " nopull " in line
                          and ("ErrImagePull" in line or "ImagePullBackOff" in line)), None),
            60, "kedge status to show the pull failure as kubectl does",
        )  # fmt: skip
        assert "Pending" not in row
        kubectl_says = cloud.kubectl("get", "pod", "nopull", "--no-headers").split()[2]
        assert kubectl_says in ("ErrImagePull", "ImagePullBackOff")
    finally:
        cloud.kubectl("delete", "pod", "nopull", "--wait=false", "--ignore-not-found")


def test_kubectl_and_quiet_cloud_log(e2e: E2E) -> None:
    cloud, edge = e2e.cloud, e2e.edge
    got = kedge("--root", str(cloud.root), "kubectl", "get", "node", edge.node, "-o", "name")
    assert got.stdout.strip() == f"node/{edge.node}"
    log = (cloud.root / "var" / "log" / "kedge" / "cloud.log").read_text()
    assert "kedge cloud" in log and " INFO httpx" not in log, "library loggers at WARNING unless -v"


def test_join_against_the_certificate_port(e2e: E2E, tmp_path: Path) -> None:
    cloud = e2e.cloud
    token = cloud.token()
    wrong = ["join", "--root", str(tmp_path), "--token", token, "--server", f"127.0.0.1:{cloud.cert_port}",
             "--cert-port", str(cloud.cert_port), "--node-name", "wrong-port", "--mqtt", "off"]  # fmt: skip
    refused = kedge("-o", "json", *wrong, check=False)
    assert refused.returncode == 3
    body = json.loads(refused.stderr.strip().splitlines()[-1])
    assert body["failed"] == ["hub-port"]
    hub = next(c for c in body["checks"] if c["name"] == "hub-port")
    assert (
        "without asking for a node certificate (HTTP 404)" in hub["detail"] and "--cert-port" in hub["hint"]
    )
    assert list(tmp_path.iterdir()) == []
    # forced past the check, the join fails — and leaves nothing behind for the next one
    forced = kedge(*wrong, "--ignore-preflight-errors", "hub-port", "--ready-timeout", "3", check=False)
    assert forced.returncode == 4, forced.stderr
    error, hint = one_error(forced.stderr)
    assert "not Ready" in error and "HTTP 404" in error and "run the same `kedge join" in hint
    assert "removed the" in forced.stderr
    assert list(tmp_path.iterdir()) == [], "no agent, certificate, key or config left"
    assert "nothing to reset" in kedge("reset", "--root", str(tmp_path), "--force").stderr


def test_reset_delete_node_then_cloud_leaves_no_logs_or_lock(e2e: E2E) -> None:
    """Last in the module: it resets the environment (the fixture's teardown is safe after it)."""
    cloud, edge = e2e.cloud, e2e.edge
    assert cloud.get("node", edge.node)["metadata"]["name"] == edge.node
    done = kedge("reset", "edge", "--delete-node", "--root", str(edge.root), "--force")
    assert f"node {edge.node}" in done.stdout and "deleted" in done.stdout
    eventually(
        lambda: edge.node not in cloud.kubectl("get", "nodes", "-o", "name"), 20, "the Node to be deleted"
    )
    kedge("reset", "cloud", "--root", str(cloud.root), "--force")
    for left in ("var/log/kedge/cloud.log", "var/log/kedge/apiserver.log", "run/kedge/cloud-admin.lock"):
        assert not (cloud.root / left).exists(), left
    again = kedge("reset", "cloud", "--root", str(cloud.root), "--force")
    assert again.returncode == 0
