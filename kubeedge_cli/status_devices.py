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
    rows.extend(_dmi_rows(d.get("dmi")))
    for dev in devices:
        last = dev.get("lastReport")
        when = dt.datetime.fromtimestamp(last, dt.UTC).strftime("%H:%M:%S UTC") if last else "never"
        state = dev.get("state") or "-"
        m = dev.get("mapper")
        via = f", mapper {m.get('name')} ({m.get('health')})" if m else ""
        rows.append(
            (
                f"  {dev.get('id')}",
                f"{dev.get('properties', 0)} properties, state {state}, last report {when}{via}",
            )
        )
    for key, t in (d.get("trouble") or {}).items():
        if t.get("active"):
            rows.append(("problem", f"{t.get('last')} ({t.get('count')}x, {key})"))
    return rows


def _dmi_rows(dmi: dict[str, Any] | None) -> list[tuple[str, str]]:
    """DMI: the socket, each mapper with its health (down: the error and when it is retried)."""
    if not dmi:
        return []
    up = "serving" if dmi.get("serving") else "NOT serving"
    n, refused, limited = len(dmi.get("mappers") or []), dmi.get("rejected", 0), dmi.get("rateLimited", 0)
    rows = [
        ("dmi", f"{up} {dmi.get('socket')}, {n} mapper(s), {refused} refused, {limited} over the rate limit")
    ]
    for m in dmi.get("mappers") or []:
        health = m.get("health", "?")
        if health == "down":
            health = f"DOWN ({m.get('error')}; {m.get('failures')} failure(s))"
        rows.append((f"  mapper {m.get('name')}", f"{m.get('protocol')} at {m.get('address')}: {health}, "
                     f"{len(m.get('devices') or [])} device(s)"))  # fmt: skip
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
        known: dict[str, str] = {}  # device id -> its protocol (DMI mappers serve by protocol)
        if "objects" in tables:
            for ns, name, data in conn.execute(
                "SELECT namespace, name, data FROM objects WHERE type='device'"
            ):
                proto = ((_json(data).get("spec") or {}).get("protocol") or {}) if data else {}
                known[f"{ns}/{name}"] = (
                    str(proto.get("protocolName") or "") if isinstance(proto, dict) else ""
                )
        mappers: dict[str, dict[str, Any]] = {}
        if "dmi_mappers" in tables:  # what the edge last recorded of each registered mapper
            for proto, data in conn.execute("SELECT protocol, data FROM dmi_mappers"):
                saved = _json(data)
                mappers[proto] = {
                    "name": (saved.get("info") or {}).get("name", ""),
                    "health": saved.get("health", ""),
                }
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
        entry = {
            "id": dev,
            "known": dev in known,
            "state": state,
            "lastOnlineTime": last_online,
            "twins": props,
        }
        if known.get(dev):
            entry["protocol"] = known[dev]
            if known[dev] in mappers:
                entry["mapper"] = mappers[known[dev]]
        out["devices"].append(entry)
    return out


def _json(data: Any) -> dict[str, Any]:
    try:
        got = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return got if isinstance(got, dict) else {}


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
        m = dev.get("mapper")
        mapper = f"{m['name']} ({m['health']})" if m else "-"
        if not dev["twins"]:
            rows.append([dev["id"], dev["state"] or "-", mapper, "-", "-", "-", "-", "-", "-"])
        for t in dev["twins"]:
            rows.append([
                dev["id"], dev["state"] or "-", mapper, t["property"], t["type"],
                "-" if t["expected"] is None else t["expected"], _versions(t["expectedVersion"]),
                "-" if t["actual"] is None else t["actual"], _versions(t["actualVersion"]),
            ])  # fmt: skip
    header = ["device", "state", "mapper", "property", "type", "expected", "exp-ver", "actual", "act-ver"]
    render.table(header, rows)
    if view.get("pendingReports"):
        render.message(f"{view['pendingReports']} report(s) waiting for the cloud")
