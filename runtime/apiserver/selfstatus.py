"""The embedded API server's part of `kedge status`: its /readyz?verbose, asked with the admin token.

Why /readyz: the server and its controllers run in one process (`kedge apiserver`), and every
controller is a `controller/<name>` check there (controllers/manager.py), so one authenticated
request says whether the server answers and which controller fails on what. Schema: role, running,
healthy, server, message, checks {name: "ok" | what fails}, failing [controller names].
"""

from __future__ import annotations

import base64
import http.client
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from runtime.paths import Paths

_PREFIX = "controller/"


def parse_checks(text: str) -> dict[str, str]:
    """`[+]ping ok` / `[-]controller/deployment failed: why` lines → {name: "ok" | why}."""
    checks: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("[+]"):
            name, _, _ = line[3:].partition(" ")
            checks[name] = "ok"
        elif line.startswith("[-]"):
            name, _, rest = line[3:].partition(" ")
            checks[name] = rest.removeprefix("failed: ") or "failed"
    return checks


def _connection(kubeconfig: Path) -> tuple[http.client.HTTPSConnection, str]:
    doc = yaml.safe_load(kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    token = str(doc["users"][0]["user"].get("token", ""))
    url = urllib.parse.urlsplit(cluster["server"])
    ctx = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    return http.client.HTTPSConnection(
        url.hostname or "127.0.0.1", url.port or 443, context=ctx, timeout=3
    ), token


def status(root: Path) -> dict[str, Any]:
    """What `kedge status` shows for the embedded API server installed under `root`."""
    kubeconfig = Paths.of(root, "apiserver").state / "admin.kubeconfig"
    out: dict[str, Any] = {
        "role": "apiserver",
        "running": False,
        "healthy": False,
        "server": "",
        "message": "",
    }
    if not kubeconfig.exists():
        out["message"] = f"the embedded API server is not running (no {kubeconfig})"
        return out
    try:
        conn, token = _connection(kubeconfig)
        out["server"] = f"https://{conn.host}:{conn.port}"
        conn.request("GET", "/readyz?verbose", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        conn.close()
    except (
        OSError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        http.client.HTTPException,
        yaml.YAMLError,
    ) as exc:
        out["message"] = f"the embedded API server does not answer: {exc}"
        return out
    checks = parse_checks(text)
    failing = sorted(
        n.removeprefix(_PREFIX) for n, v in checks.items() if v != "ok" and n.startswith(_PREFIX)
    )
    out.update(running=True, healthy=resp.status == 200, checks=checks, failing=failing)
    if failing:
        out["message"] = "; ".join(f"controller {n}: {checks[_PREFIX + n]}" for n in failing)
    elif resp.status != 200:  # the server's own checks (etcd: its storage refuses writes)
        bad = [f"{n}: {v}" for n, v in checks.items() if v != "ok"]
        out["message"] = "; ".join(bad) or f"/readyz answered {resp.status}"
    return out
