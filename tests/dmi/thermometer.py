"""A "virtual thermometer" mapper: KubeEdge DMI v1beta1 from the generated stubs, as its own process.

It does what a mapper-framework mapper does: serves DeviceMapperService on its own unix socket,
registers with the edge (``MapperRegister``, withData, a 1 s deadline), and reports its devices'
properties with ``ReportDeviceStatus`` on a timer — a temperature that counts up from ``--start``
(so every value is unique), and every property with a desired value reported as applied
(``reported`` = ``observedDesired`` = desired). Everything it receives and every report the edge
acknowledged is appended to ``--events`` as one JSON line, which the tests read.

    python -m tests.dmi.thermometer --dmi SOCK --socket OWN.sock --events FILE [--protocol P]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format, wrappers_pb2

from runtime.edge.devices.dmi import api_pb2 as pb
from tests.dmi import api_pb2_grpc as rpc


class Journal:
    def __init__(self, path: Path) -> None:
        self.path, self.lock = path, threading.Lock()

    def add(self, event: str, **fields: Any) -> None:
        with self.lock, self.path.open("a") as f:
            f.write(json.dumps({"event": event, "at": time.time(), **fields}) + "\n")
            f.flush()


def described(d: pb.Device) -> dict[str, Any]:
    """A device as the journal records it: desired values, config data unpacked, protocol."""
    out: dict[str, Any] = {"id": f"{d.namespace}/{d.name}", "model": d.spec.deviceModelReference,
                           "protocol": d.spec.protocol.protocolName, "desired": {}, "visitors": {},
                           "config": unpack(d.spec.protocol.configData)}  # fmt: skip
    for p in d.spec.properties:
        out["desired"][p.name] = {"value": p.desired.value, "metadata": dict(p.desired.metadata)}
        out["visitors"][p.name] = {"protocolName": p.visitors.protocolName, **unpack(p.visitors.configData)}
    return out


def unpack(cv: pb.CustomizedValue) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, a in cv.data.items():
        for wrapper in (wrappers_pb2.StringValue, wrappers_pb2.FloatValue, wrappers_pb2.BoolValue):
            if a.Is(wrapper.DESCRIPTOR):
                w = wrapper()
                a.Unpack(w)
                out[k] = {"type": wrapper.DESCRIPTOR.name, "value": w.value}
    return out


class Thermometer(rpc.DeviceMapperServiceServicer):
    def __init__(self, journal: Journal, start: float) -> None:
        self.journal = journal
        self.devices: dict[str, pb.Device] = {}
        self.lock = threading.Lock()
        self.value = start

    def add(self, d: pb.Device) -> None:
        with self.lock:
            self.devices[f"{d.namespace}/{d.name}"] = d

    def RegisterDevice(self, request: pb.RegisterDeviceRequest, context: Any) -> pb.RegisterDeviceResponse:
        self.add(request.device)
        self.journal.add("RegisterDevice", device=described(request.device))
        return pb.RegisterDeviceResponse(
            deviceName=request.device.name, deviceNamespace=request.device.namespace
        )

    def UpdateDevice(self, request: pb.UpdateDeviceRequest, context: Any) -> pb.UpdateDeviceResponse:
        self.add(request.device)
        self.journal.add("UpdateDevice", device=described(request.device))
        return pb.UpdateDeviceResponse()

    def RemoveDevice(self, request: pb.RemoveDeviceRequest, context: Any) -> pb.RemoveDeviceResponse:
        with self.lock:
            self.devices.pop(f"{request.deviceNamespace}/{request.deviceName}", None)
        self.journal.add("RemoveDevice", id=f"{request.deviceNamespace}/{request.deviceName}")
        return pb.RemoveDeviceResponse()

    def CreateDeviceModel(
        self, request: pb.CreateDeviceModelRequest, context: Any
    ) -> pb.CreateDeviceModelResponse:
        self.journal.add("CreateDeviceModel", model=json_format.MessageToDict(request.model))
        return pb.CreateDeviceModelResponse(deviceModelName=request.model.name)

    def UpdateDeviceModel(
        self, request: pb.UpdateDeviceModelRequest, context: Any
    ) -> pb.UpdateDeviceModelResponse:
        self.journal.add("UpdateDeviceModel", model=json_format.MessageToDict(request.model))
        return pb.UpdateDeviceModelResponse()

    def RemoveDeviceModel(
        self, request: pb.RemoveDeviceModelRequest, context: Any
    ) -> pb.RemoveDeviceModelResponse:
        self.journal.add("RemoveDeviceModel", name=request.modelName)
        return pb.RemoveDeviceModelResponse()

    def report_once(self, stub: rpc.DeviceManagerServiceStub) -> None:
        with self.lock:
            devices = list(self.devices.values())
        for d in devices:
            req = pb.ReportDeviceStatusRequest(deviceName=d.name, deviceNamespace=d.namespace)
            sent: dict[str, str] = {}
            now = str(int(time.time() * 1000))
            for p in d.spec.properties:
                t = req.reportedDevice.twins.add(propertyName=p.name)
                typ = p.desired.metadata.get("type", "string")
                if p.desired.value:
                    t.reported.value = p.desired.value
                    t.observedDesired.value = p.desired.value
                    t.observedDesired.metadata.update({"type": typ, "timestamp": now})
                elif typ in ("float", "double", "int"):
                    self.value += 1
                    t.reported.value = str(int(self.value)) if typ == "int" else f"{self.value:.1f}"
                    t.observedDesired.value = ""  # as mapper-framework sends a property with no desired value
                else:
                    t.reported.value = "ok"
                t.reported.metadata.update({"type": typ, "timestamp": now})
                sent[p.name] = t.reported.value
            try:
                stub.ReportDeviceStatus(req, timeout=5)
            except grpc.RpcError as exc:
                self.journal.add("report-failed", id=f"{d.namespace}/{d.name}", code=exc.code().name,
                                 details=exc.details())  # fmt: skip
                continue
            self.journal.add("acked", id=f"{d.namespace}/{d.name}", values=sent)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dmi", required=True, help="the edge's DMI socket")
    p.add_argument("--socket", required=True, help="this mapper's own socket")
    p.add_argument("--events", required=True, type=Path)
    p.add_argument("--protocol", default="virtual-thermometer")
    p.add_argument("--name", default="thermometer")
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--start", type=float, default=20.0)
    args = p.parse_args()
    journal = Journal(args.events)
    mapper = Thermometer(journal, args.start)
    Path(args.socket).unlink(missing_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_DeviceMapperServiceServicer_to_server(mapper, server)
    server.add_insecure_port(f"unix:{args.socket}")
    server.start()
    channel = grpc.insecure_channel(f"unix:{args.dmi}")
    stub = rpc.DeviceManagerServiceStub(channel)
    info = pb.MapperInfo(name=args.name, version="v1.0.0", api_version="v1beta1", protocol=args.protocol,
                         address=args.socket.encode(), state="running")  # fmt: skip
    while True:  # the edge may not serve its socket yet
        try:
            got = stub.MapperRegister(pb.MapperRegisterRequest(withData=True, mapper=info), timeout=1.0)
            break
        except grpc.RpcError as exc:
            journal.add("register-failed", code=exc.code().name, details=exc.details())
            time.sleep(0.3)
    assert len(got.deviceList) == len(got.modelList), "parallel lists"
    for d in got.deviceList:
        mapper.add(d)
    journal.add("registered", devices=[described(d) for d in got.deviceList],
                models=[f"{m.namespace}/{m.name}" for m in got.modelList])  # fmt: skip
    for d in got.deviceList:
        stub.ReportDeviceStates(pb.ReportDeviceStatesRequest(deviceName=d.name, deviceNamespace=d.namespace,
                                                             state="online"), timeout=5)  # fmt: skip
    while True:
        mapper.report_once(stub)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
