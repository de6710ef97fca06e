"""DMI fixtures: a DevicePlane with DMI on a short socket path, and the thermometer mapper as a process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.config import DmiSection, MqttSection
from tests.devices.conftest import PlaneHandle, start_plane
from tests.devices.mqttclient import MODEL, device
from tests.fixtures.procs import start, stop
from tests.fixtures.wait import eventually

REPO = Path(__file__).parents[2]


def short_dir() -> Path:
    """A folder for unix sockets: pytest's tmp paths can exceed the 107-byte sun_path limit."""
    return Path(tempfile.mkdtemp(prefix="kdmi-", dir="/tmp"))


class Mapper:
    """The thermometer mapper (tests/dmi/thermometer.py) as its own process, with its journal."""

    def __init__(self, dmi: Path, folder: Path, protocol: str = "modbus", start_at: float = 20.0) -> None:
        self.dmi, self.folder, self.protocol, self.start_at = dmi, folder, protocol, start_at
        self.socket = folder / f"{protocol}.sock"
        self.events = folder / "events.jsonl"
        self.log = folder / "mapper.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, start_at: float | None = None, interval: float = 0.3) -> None:
        cmd = [sys.executable, "-m", "tests.dmi.thermometer", "--dmi", str(self.dmi), "--socket",
               str(self.socket), "--events", str(self.events), "--protocol", self.protocol,
               "--interval", str(interval), "--start", str(start_at or self.start_at)]  # fmt: skip
        self.proc = start(cmd, self.log, cwd=REPO)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def journal(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]

    def wait(
        self, what: Callable[[dict[str, Any]], bool], timeout: float = 15.0, after: int = 0
    ) -> dict[str, Any]:
        """The first journal entry (from index ``after``) for which ``what`` holds."""

        def found() -> dict[str, Any] | None:
            return next((e for e in self.journal()[after:] if what(e)), None)

        return eventually(found, timeout, "a mapper journal entry", proc=self.proc, log=self.log)


@pytest.fixture
def dmi_plane(tmp_path: Path) -> Iterator[tuple[PlaneHandle, Path]]:
    """A DevicePlane of node n1 (default/thermostat-01, protocol modbus) serving DMI on a fresh socket."""
    folder = short_dir()
    sock = folder / "dmi.sock"
    handle, finish = start_plane(
        tmp_path / "cache.db",
        {"device": [device()], "devicemodel": [MODEL]},
        MqttSection(port=0, report_window_seconds=0.2),
        dmi=DmiSection(enabled=True, socket=str(sock)),
    )
    try:
        eventually(lambda: sock.exists(), 10, what="the DMI socket")
        yield handle, folder
    finally:
        finish()
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture
def mapper(dmi_plane: tuple[PlaneHandle, Path]) -> Iterator[Mapper]:
    _, folder = dmi_plane
    m = Mapper(folder / "dmi.sock", folder)
    try:
        yield m
    finally:
        m.stop()
