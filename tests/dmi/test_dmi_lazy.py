"""DMI on and no mapper: the socket is bound but gRPC (grpclib, h2, protobuf, the stubs) is not
imported — about 5 MB of the idle edge (docs/benchmarks.md); the first mapper's connection, waiting
in the socket's backlog, loads it and its MapperRegister is answered with the node's devices."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import grpc

from runtime.edge.devices.dmi import api_pb2 as pb
from tests.dmi import api_pb2_grpc as rpc
from tests.dmi.conftest import REPO, short_dir


def test_grpc_is_imported_when_the_first_mapper_connects_not_before(tmp_path: Path) -> None:
    folder = short_dir()
    sock = folder / "dmi.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.dmi.lazy_plane", str(tmp_path / "cache.db"), str(sock)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdin is not None
        bound = json.loads(proc.stdout.readline())
        assert bound["bound"] == [], f"gRPC loaded before any mapper connected: {bound['bound']}"
        assert bound["status"]["serving"] and not bound["status"]["grpcLoaded"]
        assert oct(sock.stat().st_mode & 0o777) == "0o600"

        with grpc.insecure_channel(f"unix:{sock}") as channel:
            info = pb.MapperInfo(name="first", protocol="modbus", address=str(folder / "m.sock").encode())
            got = rpc.DeviceManagerServiceStub(channel).MapperRegister(
                pb.MapperRegisterRequest(withData=True, mapper=info), timeout=5
            )
        assert [d.name for d in got.deviceList] == ["thermostat-01"]
        registered = json.loads(proc.stdout.readline())
        assert set(registered["registered"]) == {"grpclib", "h2", "google.protobuf",
                                                 "runtime.edge.devices.dmi.server"}  # fmt: skip
        assert registered["status"]["grpcLoaded"]
        proc.stdin.close()
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
