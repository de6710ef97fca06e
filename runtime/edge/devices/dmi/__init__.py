"""runtime/edge/devices/dmi: KubeEdge's Device Management Interface (dmi/v1beta1) — gRPC mappers.

Imported only when ``dmi.enabled`` (grpclib and protobuf are the optional ``dmi`` extra). Modules:
- ``api.proto``  — KubeEdge's dmi/v1beta1 interface (same names and field numbers); ``api_pb2*``
                   (messages) and ``api_grpc`` (grpclib's services and stubs) are generated from it
                   by scripts/gen_dmi.py and checked in.
- ``convert``    — cached Device/DeviceModel dicts → DMI messages, as edgecore converts them.
- ``server``     — DeviceManagerService (MapperRegister, ReportDeviceStatus/States), the rate limit,
                   the unix socket (0600).
- ``mappers``    — one registered mapper: its DeviceMapperService calls, kept in step, back-off.
- ``service``    — ``Dmi``: wiring with the device plane, mapper records in the cache, status.

mapper → MapperRegister → service.register → (withData) devices+models from the cache at once
mapper → ReportDeviceStatus → server (checks per twin) → bridge.apply → twin store → uplink → cloud
cloud Device/DeviceModel → plane.on_cloud → Dmi.changed → MapperLink.reconcile → Register/Update/
      RemoveDevice, Create/Update/RemoveDeviceModel on the mapper's socket (retried with back-off)
"""
