"""kubelet's node events for a status change (what NodeStatus reports against the cloud's copy):
Rebooted, the pressure pairs (NodeHasSufficientMemory / NodeHasInsufficientMemory, disk, PID) and
NodeReady / NodeNotReady. NodeSchedulable / NodeNotSchedulable follow the Node's spec and are recorded
by NodeStatus.cloud_node."""

from __future__ import annotations

from typing import Any


def _ready(status: dict[str, Any] | None) -> bool | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return None


# kubelet's pressure conditions and the events its status setters record when one changes (or is
# first set): condition type -> (reason when False, reason when True); all of type Normal
PRESSURE_EVENTS = {
    "MemoryPressure": ("NodeHasSufficientMemory", "NodeHasInsufficientMemory"),
    "DiskPressure": ("NodeHasNoDiskPressure", "NodeHasDiskPressure"),
    "PIDPressure": ("NodeHasSufficientPID", "NodeHasInsufficientPID"),
}


def _condition(status: dict[str, Any] | None, kind: str) -> str | None:
    return next(
        (c.get("status") for c in (status or {}).get("conditions") or [] if c.get("type") == kind), None
    )


def node_events(name: str, base: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """kubelet's node events for a status going from `base` (as the cloud held it) to `new`:
    Rebooted when the boot id moved; NodeHasSufficientMemory / NodeHasInsufficientMemory (and the disk
    and PID pairs) when a pressure condition changes or first appears; NodeReady / NodeNotReady when
    Ready changes (or first appears)."""
    out: list[tuple[str, str, str]] = []
    old_boot = ((base or {}).get("nodeInfo") or {}).get("bootID")
    boot = (new.get("nodeInfo") or {}).get("bootID")
    if old_boot and boot and old_boot != boot:
        out.append(("Warning", "Rebooted", f"Node {name} has been rebooted, boot id: {boot}"))
    for kind, (ok, pressed) in PRESSURE_EVENTS.items():
        now_ = _condition(new, kind)
        if now_ in ("True", "False") and now_ != _condition(base, kind):
            reason = pressed if now_ == "True" else ok
            out.append(("Normal", reason, f"Node {name} status is now: {reason}"))
    was = _ready(base)
    now = _ready(new)
    if now is not None and now != was:
        reason = "NodeReady" if now else "NodeNotReady"
        out.append(("Normal", reason, f"Node {name} status is now: {reason}"))
    return out
