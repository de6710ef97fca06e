"""Device/DeviceModel objects (dicts from the edge's cache) → DMI messages, as edgecore builds them.

edgecore turns a v1beta1 Device into ``v1beta1.Device`` by its JSON field names (so the camelCase
names of the CRD and of api.proto line up), sets ``deviceModelReference`` from
``spec.deviceModelRef.name``, and wraps every ``configData`` value (protocol and per-property
visitors) in a ``google.protobuf.Any``: a string as ``StringValue``, a number as ``FloatValue`` (Go
decodes JSON numbers as float64 and edgecore narrows them to a float), a boolean as ``BoolValue``.
edgecore fails the whole device on a nested object or list; kedge sends those as a ``StringValue``
holding their JSON instead, and says so in the docs.

Better than edgecore where a mapper would crash: mapper-framework reads ``desired.value`` and
``visitors.configData.data`` of every property without checking for nil, so kedge always sends a
``desired`` (its metadata carries the model's type and the desired value's timestamp, which
mapper-framework reads) and a ``visitors`` with a ``configData``, empty when the Device has none.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import any_pb2, wrappers_pb2

from runtime.edge.devices import values
from runtime.edge.devices.dmi import api_pb2 as pb

Obj = dict[str, Any]


def key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def protocol_of(device: Obj) -> str:
    """The mapper protocol a Device is served by (``spec.protocol.protocolName``), "" for none."""
    proto = (device.get("spec") or {}).get("protocol")
    return str(proto.get("protocolName") or "") if isinstance(proto, dict) else ""


def model_ref(device: Obj) -> str:
    """``<namespace>/<model name>`` of the Device's DeviceModel."""
    ns = key(device).split("/", 1)[0]
    return f"{ns}/{((device.get('spec') or {}).get('deviceModelRef') or {}).get('name') or ''}"


def to_any(value: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    if isinstance(value, bool):
        out.Pack(wrappers_pb2.BoolValue(value=value))
    elif isinstance(value, int | float):
        out.Pack(wrappers_pb2.FloatValue(value=float(value)))
    elif isinstance(value, str):
        out.Pack(wrappers_pb2.StringValue(value=value))
    else:  # nested object, list or null: JSON text (edgecore refuses the whole device)
        out.Pack(wrappers_pb2.StringValue(value=orjson.dumps(value).decode()))
    return out


def _customized(target: pb.CustomizedValue, config: Any) -> None:
    data = config.get("data") if isinstance(config, dict) else None
    for k, v in (data or {}).items():
        target.data[str(k)].CopyFrom(to_any(v))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _push_method(target: pb.PushMethod, push: Obj) -> None:
    """The CRD's pushMethod has the same field names as the proto: copy what is there."""
    from google.protobuf import json_format

    body = {k: v for k, v in push.items() if k in target.DESCRIPTOR.fields_by_name}
    if "anomalyDetection" in body:
        body.pop("anomalyDetection")  # free-form map of Any: not expressible in proto JSON here
    json_format.ParseDict(body, target, ignore_unknown_fields=True)


def model_types(model: Obj | None) -> dict[str, str]:
    """Property name → the twin wire's type name (``float`` for the model's ``FLOAT``)."""
    props = ((model or {}).get("spec") or {}).get("properties") or []
    return {
        str(p["name"]): values.wire_type(p.get("type")) or "string"
        for p in props
        if isinstance(p, dict) and p.get("name")
    }


def device(obj: Obj, model: Obj | None, twins: dict[str, Any] | None = None) -> pb.Device:
    """A Device as a mapper gets it in RegisterDevice/UpdateDevice/MapperRegister.

    ``twins`` (the edge's twin store for this device) fills ``status.twins`` with the last reported
    and observed-desired values, so a mapper that registers again starts from what the edge stored.
    """
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    out = pb.Device(name=str(meta.get("name") or ""), namespace=str(meta.get("namespace") or "default"))
    out.spec.deviceModelReference = str((spec.get("deviceModelRef") or {}).get("name") or "")
    proto: Obj = spec["protocol"] if isinstance(spec.get("protocol"), dict) else {}
    out.spec.protocol.protocolName = str(proto.get("protocolName") or "")
    out.spec.protocol.configData.SetInParent()
    _customized(out.spec.protocol.configData, proto.get("configData"))
    types = model_types(model)
    for p in spec.get("properties") or []:
        if not isinstance(p, dict) or not p.get("name"):
            continue
        prop = out.spec.properties.add(name=str(p["name"]))
        desired: Obj = p["desired"] if isinstance(p.get("desired"), dict) else {}
        prop.desired.value = values.as_text(desired.get("value")) or ""
        for k, v in (desired.get("metadata") or {}).items():
            prop.desired.metadata[str(k)] = str(v)
        prop.desired.metadata.setdefault("type", types.get(prop.name, "string"))
        visitors: Obj = p["visitors"] if isinstance(p.get("visitors"), dict) else {}
        prop.visitors.protocolName = str(visitors.get("protocolName") or out.spec.protocol.protocolName)
        prop.visitors.configData.SetInParent()
        _customized(prop.visitors.configData, visitors.get("configData"))
        prop.reportCycle = _int(p.get("reportCycle"))
        prop.collectCycle = _int(p.get("collectCycle"))
        prop.reportToCloud = bool(p.get("reportToCloud"))
        if isinstance(p.get("pushMethod"), dict):
            _push_method(prop.pushMethod, p["pushMethod"])
    for m in spec.get("methods") or []:
        if isinstance(m, dict) and m.get("name"):
            out.spec.methods.add(
                name=str(m["name"]),
                description=str(m.get("description") or ""),
                propertyNames=[str(n) for n in m.get("propertyNames") or []],
            )
    for name, st in (twins or {}).items():
        twin = out.status.twins.add(propertyName=name)
        typ = (st.get("metadata") or {}).get("type", "string")
        for part, field in (("actual", twin.reported), ("expected", twin.observedDesired)):
            got = st.get(part) or {}
            if got.get("value") is not None:
                field.value = str(got["value"])
                field.metadata["type"] = typ
                ts = (got.get("metadata") or {}).get("timestamp")
                if ts is not None:
                    field.metadata["timestamp"] = str(ts)
    return out


def model(obj: Obj) -> pb.DeviceModel:
    """A DeviceModel as a mapper gets it (name, namespace, properties; the CRD's protocol is not sent)."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    out = pb.DeviceModel(name=str(meta.get("name") or ""), namespace=str(meta.get("namespace") or "default"))
    out.spec.SetInParent()
    for p in spec.get("properties") or []:
        if isinstance(p, dict) and p.get("name"):
            out.spec.properties.add(
                name=str(p["name"]),
                description=str(p.get("description") or ""),
                type=str(p.get("type") or ""),
                accessMode=str(p.get("accessMode") or ""),
                minimum="" if p.get("minimum") is None else str(p["minimum"]),
                maximum="" if p.get("maximum") is None else str(p["maximum"]),
                unit=str(p.get("unit") or ""),
            )
    return out


def model_protocol(obj: Obj) -> str:
    """A v1beta1 DeviceModel names its protocol in ``spec.protocol`` (a string)."""
    proto = (obj.get("spec") or {}).get("protocol")
    return proto if isinstance(proto, str) else ""


def fingerprint(msg: pb.Device | pb.DeviceModel) -> bytes:
    """What decides an Update call: the message without the status (reports never cause one)."""
    if isinstance(msg, pb.Device):
        copy = pb.Device()
        copy.CopyFrom(msg)
        copy.ClearField("status")
        return copy.SerializeToString(deterministic=True)
    return msg.SerializeToString(deterministic=True)
