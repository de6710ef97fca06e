"""How `kedge status` looks: one function per section, the same shapes for every role.

    SECTIONS   role -> function printing that role's section (a table of FIELD/STATUS rows, then
               its own tables: pods for the edge, edges for the cloud); add a section here
    for_json   what -o json/yaml print: camelCase keys (as Kubernetes), times as ISO 8601 UTC

The runtime serves epoch seconds and its own key names; rendering them for people is done here only.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from typing import Any

from kubeedge_cli import render, status_devices

# keys whose numeric values are epoch seconds (ISO 8601 in JSON, ages or dates in tables)
TIME_KEYS = frozenset(
    {"since", "lastContact", "lastKeepalive", "notAfter", "lastSync", "lastReport", "leaseRenewed",
     "checkedAt", "started", "joined"}
)  # fmt: skip
# maps whose keys are data (names of things), not field names: kept as they are
DATA_MAPS = frozenset({"objects", "addresses", "ready", "outboxDropped", "checks"})


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def for_json(obj: Any, key: str = "") -> Any:
    """camelCase keys and ISO times, recursively (design.md §7: one key style, as Kubernetes)."""
    if isinstance(obj, dict):
        if key in DATA_MAPS:
            return {k: for_json(v) for k, v in obj.items()}
        return {camel(k): for_json(v, camel(k)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [for_json(v) for v in obj]
    if key in TIME_KEYS and isinstance(obj, int | float) and not isinstance(obj, bool):
        return iso(obj)
    return obj


def ago(ts: Any, never: str = "-") -> str:
    """`42s ago`, `5m ago`, `3h ago`, `2d ago` (kubectl's AGE, with "ago")."""
    if not isinstance(ts, int | float):
        return never
    return f"{duration(time.time() - ts)} ago"


def duration(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


_ERRNO_WORDS = (
    (r"ConnectionRefusedError|Connection refused|Errno 111", "connection refused: nothing listens there"),
    (r"TimeoutError|timed out", "no answer (timed out): the cloud is down or a firewall drops packets"),
    (r"gaierror|Name or service not known|Errno -2|Errno -3", "the host name does not resolve (DNS)"),
    (r"No route to host|Errno 113", "no route to the host: check the network"),
    (r"Network is unreachable|Errno 101", "the network is unreachable from this machine"),
    (r"ConnectionResetError|Connection reset|Errno 104", "the connection was reset by the other side"),
    (r"CERTIFICATE_VERIFY_FAILED|certificate verify failed", "the cloud's certificate is not trusted"),
    (r"InvalidStatus.*HTTP (\d+)", r"the server answered HTTP \1: not a cloud hub on that port?"),
)


def words(problem: str) -> str:
    """A connection error as a person reads it; the original text follows in parentheses."""
    for pattern, text in _ERRNO_WORDS:
        m = re.search(pattern, problem)
        if m:
            return f"{m.expand(text)} ({problem})"
    return problem


def _rows(
    rows: list[tuple[str, str]], head: str, problems: list[Any], after: list[tuple[str, str]] | None = None
) -> None:
    """The section's FIELD/STATUS table: its rows, a `problem` row per problem (in words), then `after`."""
    rows = rows + [("problem", words(str(p))) for p in problems if p] + (after or [])
    render.table([head, "status"], rows)


def edge_section(e: dict[str, Any]) -> None:
    c, n, cache = e.get("cloud") or {}, e.get("node") or {}, e.get("cache") or {}
    pid = (e.get("process") or {}).get("pid")
    peer = c.get("peer_kind") or c.get("peerKind")
    if c.get("connected"):
        link = (
            f"connected ({peer} peer) since {ago(c.get('since'))}, last contact {ago(c.get('last_contact'))}"
        )
    else:
        link = f"DISCONNECTED since {ago(c.get('since'), never='start (never connected)')}"
        if c.get("backoff"):
            link += f", retry in {c['backoff']:.1f}s"
    rows = [
        ("runtime", ("running" if e.get("running") else "NOT RUNNING") + (f" (pid {pid})" if pid else "")),
        ("health", "healthy" if e.get("healthy") else "UNHEALTHY"),
        ("cloud", f"{c.get('server', '')} {link}"),
        ("node", f"{n.get('name', '')} ready={n.get('ready')} registered={n.get('registered')}"),
        ("certificate", f"expires {when((e.get('certificate') or {}).get('notAfter'))}"),
        (
            "cache",
            f"{sum((cache.get('objects') or {}).values())} objects, {cache.get('bytes', 0) // 1024} KiB, "
            f"epoch {cache.get('epoch') or '-'}, last sync {ago(cache.get('lastSync'))}",
        ),
    ]
    if e.get("process"):
        p = e["process"]
        rows.append(("process", f"RSS {p.get('rssBytes', 0) / 2**20:.1f} MiB, CPU {p.get('cpuSeconds')}s"))
    problems = [
        e.get("message"),
        c.get("auth_error") or c.get("last_error"),
        n.get("lastError"),
        e.get("podsError"),
        e.get("runtimeDown") and f"container runtime is down: {e['runtimeDown']}",
    ]
    _rows(rows, "edge", problems, status_devices.section(e))  # the device plane: status_devices.py
    pods = e.get("pods") or []
    if pods:
        render.message("")
        render.table(
            ["namespace", "name", "ready", "status", "restarts", "age"],
            [[p["namespace"], p["name"], p["ready"], p.get("status") or p["phase"], p["restarts"],
              duration(p["age"])] for p in pods],
        )  # fmt: skip


def cloud_section(c: dict[str, Any]) -> None:
    certs = c.get("certificates") or {}
    ready = c.get("ready") or {}
    addresses = c.get("addresses") or {}
    tokens = c.get("tokens") or []
    state = "running" if c.get("running") else "NOT RUNNING"
    if c.get("pid"):
        state += f" (pid {c['pid']})"
    if c.get("since"):
        state += f", since {ago(c['since'])}"
    checks = ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in ready.items())
    rows = [
        ("runtime", state),
        ("health", ("healthy" if c.get("healthy") else "UNHEALTHY") + (f" ({checks})" if checks else "")),
    ]
    if c.get("replica"):
        n = len(c.get("replicas") or [])
        rows.append(
            ("replica", f"{c['replica']}{' (leader)' if c.get('leader') else ''}, {n} replica(s) live")
        )
    if addresses:
        names = {"hub": "hub", "bootstrap": "certificates", "health": "health"}
        rows.append(("listening", ", ".join(f"{names.get(k, k)} {v}" for k, v in addresses.items())))
    if c.get("running"):
        rows.append(
            ("edges", f"{c.get('connectedEdges', 0)} connected, {c.get('pendingAcks') or 0} pending acks")
        )
    if certs:
        rows.append(("certificates", f"CA expires {when((certs.get('ca') or {}).get('notAfter'))}, serving "
                     f"expires {when((certs.get('serving') or {}).get('notAfter'))}"))  # fmt: skip
    if c.get("running"):
        live = [t for t in tokens if not t.get("revoked")]
        rows.append(
            (
                "tokens",
                f"{len(live)} valid"
                + (f", next expiry in {min(live, key=_left)['remaining']}" if live else ""),
            )
        )
    _rows(rows, "cloud", [c.get("message")])
    edges = c.get("edges") or []
    if edges:
        render.message("")
        render.table(
            ["node", "peer", "version", "connected", "last keepalive", "pending acks", "replica"],
            [[e.get("name"), e.get("peer"), e.get("version") or "-", ago(e.get("since")),
              ago(e.get("lastKeepalive") or e.get("lastContact")), e.get("pendingAcks", 0), e.get("replica")]
             for e in edges],
        )  # fmt: skip


def apiserver_section(a: dict[str, Any]) -> None:
    """The embedded API server (`kedge init --embedded`): its /readyz checks, controllers included."""
    checks = a.get("checks") or {}
    failing = [name for name, verdict in checks.items() if verdict != "ok"]
    rows = [
        (
            "runtime",
            ("running" if a.get("running") else "NOT RUNNING")
            + (f", {a['server']}" if a.get("server") else ""),
        ),
        ("health", "healthy" if a.get("healthy") else "UNHEALTHY"),
    ]
    if checks:
        rows.append(("checks", f"{len(checks) - len(failing)} of {len(checks)} ok"))
    _rows(rows, "apiserver", [a.get("message"), *(f"{name}: {checks[name]}" for name in failing)])


def _left(token: dict[str, Any]) -> float:
    return float(token.get("remainingSeconds") or 0)


SECTIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "edge": edge_section,
    "cloud": cloud_section,
    "apiserver": apiserver_section,
}


def print_sections(out: dict[str, dict[str, Any]]) -> None:
    for i, (role, body) in enumerate(out.items()):
        if i:
            render.message("")
        SECTIONS[role](body)
