"""DeviceStatus from what the edge reports, sans I/O (KubeEdge v1.23's devicecontroller upstream rules).

The edge sends ``update`` of ``device/<ns>/<name>/twin/edge_updated`` (content ``{event_id, timestamp,
twin: {prop: {actual: {value, metadata: {timestamp}}, expected?, metadata: {type}, actual_version,
optional}}}``) and ``device/<ns>/<name>/state/update`` (a JSON string: ``{event_id, timestamp,
device: {name, state, lastOnlineTime?}}``).
The cloud keeps one DeviceStatus per Device (same name, a controller ownerReference to it) and
writes ``status.twins[]`` — ``actual`` → ``reported``, ``expected`` → ``observedDesired``, each
``{value, metadata: {timestamp, type}}`` — for the properties in the Device's spec only, plus
``status.state`` (verbatim) and ``status.lastOnlineTime`` (set for online/ok only). The CRD has no status
subresource, so the writes are JSON merge patches of ``{"status": …}`` on the object itself; a merge
patch replaces lists whole, so ``merged_twins`` always returns the full list, in spec order.
"""

from __future__ import annotations

import json
import time
from typing import Any

from runtime.cloud.devices.world import Obj, meta

API_VERSION = "devices.kubeedge.io/v1beta1"
STATES = frozenset({"online", "offline", "ok", "unknown", "unhealthy"})
ONLINE_STATES = frozenset({"online", "ok"})
TWIN_SUFFIX = ("twin", "edge_updated")
STATE_SUFFIX = ("state", "update")
Twin = dict[str, Any]  # one status.twins[] entry


class BadReport(ValueError):
    """A report the cloud cannot use (malformed body, unknown state): counted and logged, not written."""


def parse_upstream(resource: str) -> tuple[str, str] | None:
    """``device/<ns>/<name>/twin/edge_updated`` → ("twin", "<ns>/<name>"); ``…/state/update`` →
    ("state", …); anything else None. ``resource`` has no ``node/<node>/`` prefix."""
    parts = resource.split("/")
    if len(parts) != 5 or parts[0] != "device" or not parts[1] or not parts[2]:
        return None
    tail = (parts[3], parts[4])
    kind = "twin" if tail == TWIN_SUFFIX else "state" if tail == STATE_SUFFIX else None
    return (kind, f"{parts[1]}/{parts[2]}") if kind else None


def body_of(content: Any) -> dict[str, Any]:
    """The report as a dict: KubeEdge sends a JSON string; a JSON object is taken as is."""
    if isinstance(content, bytes | bytearray):
        content = content.decode("utf-8", "replace")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError as exc:
            raise BadReport(f"not JSON: {exc}") from exc
    if not isinstance(content, dict):
        raise BadReport(f"expected a JSON object, got {type(content).__name__}")
    return content


def spec_properties(device: Obj) -> list[str]:
    props = (device.get("spec") or {}).get("properties") or []
    return [str(p["name"]) for p in props if isinstance(p, dict) and p.get("name")]


def status_object(device: Obj) -> Obj:
    """The DeviceStatus created when ``device`` appears: same name, owned by it, ``spec: {}`` and no
    status yet — what cloudcore creates (../shared/kubeedge-mqtt/README.md)."""
    m = meta(device)
    return {
        "apiVersion": API_VERSION,
        "kind": "DeviceStatus",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Device",
                    "name": m.get("name"),
                    "uid": m.get("uid"),
                    "controller": True,
                }
            ],
        },
        "spec": {},
    }


def owner_uid(status: Obj) -> str:
    for ref in meta(status).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("kind") == "Device" and ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _twin_value(part: Any, type_: str) -> dict[str, Any] | None:
    """``{value, metadata: {timestamp}}`` of the wire → ``{value, metadata: {timestamp, type}}``."""
    if not isinstance(part, dict) or part.get("value") is None:
        return None
    md: dict[str, str] = {}
    ts = (part.get("metadata") or {}).get("timestamp") if isinstance(part.get("metadata"), dict) else None
    if ts is not None:
        md["timestamp"] = str(ts)
    if type_:
        md["type"] = type_
    return {"value": _text(part["value"]), "metadata": md}


def twin_changes(device: Obj, report: dict[str, Any]) -> tuple[dict[str, Twin], int]:
    """{property: {reported?, observedDesired?}} from an edge_updated body, and how many properties
    were ignored because the Device's spec does not have them."""
    twin = report.get("twin")
    if not isinstance(twin, dict):
        raise BadReport("no 'twin' object")
    known = set(spec_properties(device))
    out: dict[str, Twin] = {}
    ignored = 0
    for prop, t in twin.items():
        if prop not in known or not isinstance(t, dict):
            ignored += 1
            continue
        type_ = (
            str((t.get("metadata") or {}).get("type") or "") if isinstance(t.get("metadata"), dict) else ""
        )
        change: Twin = {}
        reported = _twin_value(t.get("actual"), type_)
        if reported is not None:
            change["reported"] = reported
        desired = _twin_value(t.get("expected"), type_)
        if desired is not None:
            change["observedDesired"] = desired
        if change:
            out[str(prop)] = change
    return out, ignored


def merge_changes(older: dict[str, Twin], newer: dict[str, Twin]) -> dict[str, Twin]:
    """Coalesce two pending change sets; the newer value of each field wins."""
    out = {k: dict(v) for k, v in older.items()}
    for prop, change in newer.items():
        out.setdefault(prop, {}).update(change)
    return out


def merged_twins(device: Obj, current: list[Any], changes: dict[str, Twin]) -> list[Twin]:
    """The full ``status.twins`` list after ``changes``: one entry per spec property, in spec order,
    keeping what ``current`` holds for properties without a change; properties no longer in the spec
    are dropped."""
    have = {str(t.get("propertyName")): t for t in current if isinstance(t, dict)}
    out: list[Twin] = []
    for prop in spec_properties(device):
        entry = {k: v for k, v in have.get(prop, {}).items() if k != "propertyName"}
        entry.update(changes.get(prop, {}))
        out.append({"propertyName": prop, **entry})
    return out


def state_change(report: dict[str, Any], now: float | None = None) -> dict[str, str]:
    """``{state, lastOnlineTime?}`` from a state/update body (``{device: {name, state, lastOnlineTime}}``
    as edgecore sends it, or flat). lastOnlineTime only for online/ok: the edge's time when it sends
    one, else now (UTC, RFC 3339)."""
    inner = report.get("device")
    if isinstance(
        inner, dict
    ):  # edgecore's shape: {event_id, timestamp, device: {name, state, lastOnlineTime}}
        report = inner
    state = report.get("state")
    if not isinstance(state, str) or state.lower() not in STATES:
        raise BadReport(f"state {state!r} is not one of {', '.join(sorted(STATES))}")
    out = {"state": state}  # verbatim, as cloudcore writes it ("OK" stays "OK")
    if state.lower() in ONLINE_STATES:
        given = report.get("lastOnlineTime") or report.get("lastOnline") or report.get("last_online")
        out["lastOnlineTime"] = (
            str(given)
            if given
            else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
        )
    return out
