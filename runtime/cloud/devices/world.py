"""What each edge node should hold of the device plane: its Devices and the DeviceModels they use.

Sans-I/O (the watches feed ``apply``), so the rules are tested without a cluster: a Device goes to the
node in ``spec.nodeName`` (none: nowhere); a DeviceModel goes to every node holding a Device of its
namespace that names it in ``spec.deviceModelRef.name``; moving a Device touches both nodes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from runtime.cloud.controllers.world import meta, rv_of, uid_of, wire_resource
from runtime.protocol import RT_DEVICE, RT_DEVICEMODEL
from runtime.protocol.delivery import Current

Obj = dict[str, Any]
__all__ = ["DeviceWorld", "Obj", "device_id", "meta", "model_of", "node_of", "rv_of", "uid_of"]
ModelKey = tuple[str, str]  # namespace, name


def device_id(obj: Obj) -> str:
    """KubeEdge's device id: ``<namespace>/<name>``."""
    m = meta(obj)
    return f"{m.get('namespace') or ''}/{m.get('name') or ''}"


def node_of(device: Obj) -> str:
    return str((device.get("spec") or {}).get("nodeName") or "")


def model_of(device: Obj) -> ModelKey | None:
    ref = (device.get("spec") or {}).get("deviceModelRef") or {}
    name = ref.get("name") if isinstance(ref, dict) else None
    return (str(meta(device).get("namespace") or ""), str(name)) if name else None


class DeviceWorld:
    """Devices by UID and node, DeviceModels by namespace/name."""

    def __init__(self) -> None:
        self.devices: dict[str, Obj] = {}  # uid -> Device
        self.by_id: dict[str, str] = {}  # "<ns>/<name>" -> uid
        self.by_node: dict[str, set[str]] = defaultdict(set)
        self.models: dict[ModelKey, Obj] = {}

    def apply(self, kind: str, event: str, obj: Obj) -> set[str]:
        """Feed one watch event (SYNC/ADDED/MODIFIED/DELETED); returns the nodes it concerns."""
        deleted = event == "DELETED"
        if kind == "DeviceModel":
            key = (str(meta(obj).get("namespace") or ""), str(meta(obj).get("name") or ""))
            if deleted:
                self.models.pop(key, None)
            else:
                self.models[key] = obj
            return self.nodes_using(key)
        uid = uid_of(obj)
        touched: set[str] = set()
        old = self.devices.pop(uid, None)
        if old is not None:
            self.by_id.pop(device_id(old), None)
            node = node_of(old)
            self.by_node[node].discard(uid)
            if not self.by_node[node]:
                del self.by_node[node]
            touched.add(node)
        if not deleted:
            self.devices[uid] = obj
            self.by_id[device_id(obj)] = uid
            self.by_node[node_of(obj)].add(uid)
            touched.add(node_of(obj))
        touched.discard("")
        return touched

    def nodes_using(self, model: ModelKey) -> set[str]:
        return {
            node
            for node, uids in self.by_node.items()
            if node and any(model_of(self.devices[u]) == model for u in uids)
        }

    def device(self, dev_id: str) -> Obj | None:
        uid = self.by_id.get(dev_id)
        return self.devices.get(uid) if uid else None

    def on(self, node: str) -> list[Obj]:
        return [self.devices[u] for u in sorted(self.by_node.get(node, ()))] if node else []

    def desired(self, node: str) -> dict[str, Current]:
        """{uid: Current} of what ``node`` should hold: its Devices and the DeviceModels they use."""
        out: dict[str, Current] = {}
        for dev in self.on(node):
            out[uid_of(dev)] = Current(wire_resource(dev, RT_DEVICE), rv_of(dev), dev)
            key = model_of(dev)
            model = self.models.get(key) if key else None
            if model is not None and uid_of(model):
                out[uid_of(model)] = Current(wire_resource(model, RT_DEVICEMODEL), rv_of(model), model)
        return out
