"""The device parts of `kedge status`: the section under the edge's table and `kedge status devices`.

`kedge status devices` reads the twins from the edge's sqlite cache (read-only), so it answers the
same whether the runtime runs, the cloud is away or the runtime is stopped: devices are the Device
objects the cloud sent this node, with every property's expected (desired) and actual (reported)
value, their timestamps and KubeEdge's versions.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from kubeedge_cli import render
from kubeedge_cli.options import Format


def section(e: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for the edge status table (broker, listeners, clients, devices, reports, rejections)."""
    d = e.get("devices") or {}
    mode = d.get("mode", "off")
    if mode == "off" or not d:
        return [("devices", "device plane off (mqtt.mode=off)")] if mode == "off" and d else []
    rows: list[tuple[str, str]] = []
    if "broker" in d:
        b = d["broker"]
        where = ", ".join(b.get("listeners") or []) or "-"
        clients, subs = b.get("clients", 0), b.get("subscriptions", 0)
        rows.append(("mqtt", f"embedded broker on {where}, {clients} client(s), {subs} subscription(s)"))
    elif "external" in d:
        x = d["external"]
        link = "connected" if x.get("connected") else "DISCONNECTED"
        again = max(x.get("connects", 0) - 1, 0)
        rows.append(("mqtt", f"external broker {x.get('url')} {link}, {again} reconnect(s)"))
    else:
        rows.append(("mqtt", f"{mode} broker not up yet"))
    devices = d.get("devices") or []
    rej = d.get("rejected") or {}
    rep = d.get("reports") or {}
    detail = f" ({', '.join(f'{k}: {v}' for k, v in rej.items())})" if rej else ""
    rows.append(("devices", f"{len(devices)} device(s); {sum(rej.values())} request(s) rejected{detail}"))
    sent, pending, folded = rep.get("sent", 0), rep.get("pendingReports", 0), rep.get("coalesced", 0)
    rows.append(("reports", f"{sent} sent to the cloud, {pending} pending, {folded} coalesced"))
    for dev in devices:
        last = dev.get("lastReport")
        when = dt.datetime.fromtimestamp(last, dt.UTC).strftime("%H:%M:%S UTC") if last else "never"
        state = dev.get("state") or "-"
        rows.append(
            (
                f"  {dev.get('id')}",
                f"{dev.get('properties', 0)} properties, state {state}, last report {when}",
            )
        )
    for key, t in (d.get("trouble") or {}).items():
        if t.get("active"):
            rows.append(("problem", f"{t.get('last')} ({t.get('count')}x, {key})"))
    return rows


def _versions(v: Any) -> str:
    return f"{v.get('cloud', 0)}/{v.get('edge', 0)}" if isinstance(v, dict) else ""


def read(db: Path) -> dict[str, Any]:
    """Devices of this node with their twins, from the cache file alone."""
    import sqlite3  # only when asked: short commands stay light (tests/unit/test_import_diet.py)

    out: dict[str, Any] = {"cache": str(db), "devices": [], "pendingReports": 0}
    if not db.exists():
        return out
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        known: dict[str, dict[str, Any]] = {}
        if "objects" in tables:
            for ns, name in conn.execute("SELECT namespace, name FROM objects WHERE type='device'"):
                known[f"{ns}/{name}"] = {}
        twins: dict[str, dict[str, Any]] = {}
        states: dict[str, tuple[str, str]] = {}
        if "twins" in tables:
            for dev, prop, data in conn.execute("SELECT device, prop, data FROM twins ORDER BY device, prop"):
                twins.setdefault(dev, {})[prop] = orjson.loads(data)
            states = {
                r[0]: (r[1], r[2])
                for r in conn.execute("SELECT device, state, last_online FROM device_state")
            }
            out["pendingReports"] = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
    finally:
        conn.close()
    for dev in sorted(set(known) | set(twins)):
        props = []
        for prop, st in (twins.get(dev) or {}).items():
            exp, act = st.get("expected") or {}, st.get("actual") or {}
            props.append({
                "property": prop,
                "type": (st.get("metadata") or {}).get("type", "string"),
                "expected": exp.get("value"),
                "expectedAt": (exp.get("metadata") or {}).get("timestamp"),
                "expectedVersion": st.get("expected_version") or {"cloud": 0, "edge": 0},
                "actual": act.get("value"),
                "actualAt": (act.get("metadata") or {}).get("timestamp"),
                "actualVersion": st.get("actual_version") or {"cloud": 0, "edge": 0},
            })  # fmt: skip
        state, last_online = states.get(dev, ("", ""))
        out["devices"].append(
            {"id": dev, "known": dev in known, "state": state, "lastOnlineTime": last_online, "twins": props}
        )
    return out


def offline(mode: str, db: Path) -> dict[str, Any]:
    """The status's device section from the cache alone (the runtime is down): same keys it serves."""
    if mode == "off":
        return {"mode": "off"}
    import sqlite3

    try:
        view = read(db)
    except sqlite3.Error as exc:
        view = {"devices": [], "pendingReports": 0, "error": str(exc)}
    devices = [
        {"id": d["id"], "properties": len(d["twins"]), "state": d["state"], "lastReport": None}
        for d in view["devices"]
    ]
    return {
        "mode": mode,
        "ready": False,
        "devices": devices,
        "reports": {"pendingReports": view["pendingReports"]},
    }


def show(view: dict[str, Any], output: Format) -> None:
    if output is not Format.table:
        render.data(view, output)
        return
    rows = []
    for dev in view["devices"]:
        if not dev["twins"]:
            rows.append([dev["id"], dev["state"] or "-", "-", "-", "-", "-", "-", "-"])
        for t in dev["twins"]:
            rows.append([
                dev["id"], dev["state"] or "-", t["property"], t["type"],
                "-" if t["expected"] is None else t["expected"], _versions(t["expectedVersion"]),
                "-" if t["actual"] is None else t["actual"], _versions(t["actualVersion"]),
            ])  # fmt: skip
    render.table(["device", "state", "property", "type", "expected", "exp-ver", "actual", "act-ver"], rows)
    if view.get("pendingReports"):
        render.message(f"{view['pendingReports']} report(s) waiting for the cloud")
