"""runtime/edge/devices/dmi: KubeEdge's Device Management Interface (dmi/v1beta1) — gRPC mappers.

Imported only when ``dmi.enabled`` (grpclib and protobuf are the optional ``dmi`` extra); gRPC itself
only when the first mapper connects (``gate``). Modules:
- ``api.proto``  — KubeEdge's dmi/v1beta1 interface (same names and field numbers); ``api_pb2*``
                   (messages) and ``api_grpc`` (grpclib's services and stubs) are generated from it
                   by scripts/gen_dmi.py and checked in.
- ``gate``       — no gRPC: the socket bound (0600, or 0660 for ``dmi.group``) and waited on until a
                   mapper connects, the rate limit.
- ``convert``    — cached Device/DeviceModel dicts → DMI messages, as edgecore converts them.
- ``server``     — DeviceManagerService (MapperRegister, ReportDeviceStatus/States) on grpclib.
- ``mappers``    — one registered mapper: its DeviceMapperService calls, kept in step, back-off.
- ``service``    — ``Dmi``: wiring with the device plane, mapper records in the cache, status.

mapper connects → gate.knock → gRPC imported, grpclib serves the bound socket (the mapper's connect waits)
mapper → MapperRegister → service.register → (withData) devices+models from the cache at once
mapper → ReportDeviceStatus → server (checks per twin) → bridge.apply → twin store → uplink → cloud
cloud Device/DeviceModel → plane.on_cloud → Dmi.changed → MapperLink.reconcile → Register/Update/
      RemoveDevice, Create/Update/RemoveDeviceModel on the mapper's socket (retried with back-off)
"""
