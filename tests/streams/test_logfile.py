"""The json-file follower (runtime/edge/streams/logfile.py) on real files the way the engine writes
them: one JSON line per entry, rotation by rename, a real process whose end ends the follow."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

from runtime.edge.streams import logfile
from tests.fixtures.wait import eventually


def entry(log: str, time: str, stream: str = "stdout") -> bytes:
    return json.dumps({"log": log, "stream": stream, "time": time}).encode() + b"\n"


def info(path: Path, pid: int = 0) -> dict[str, Any]:
    return {"LogPath": str(path), "State": {"Pid": pid},
            "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-file": "3"}}}}  # fmt: skip


def collect(it: Any, into: list[bytes]) -> threading.Thread:
    t = threading.Thread(target=lambda: into.extend(it), daemon=True)
    t.start()
    return t


def test_history_options_as_the_engine_applies_them(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    (tmp_path / "c-json.log.2").write_bytes(entry("a\n", "2026-12-07T10:00:00Z"))
    (tmp_path / "c-json.log.1").write_bytes(entry("b\n", "2026-12-07T10:00:01.5Z", "stderr"))
    log.write_bytes(entry("c\n", "2026-12-07T10:00:02.123456789Z") + entry("d", "2026-12-07T10:00:03.1Z")
                    + b'{"log":"half')  # fmt: skip  # the engine still writing its line

    def read(**kw: Any) -> bytes:
        opts: dict[str, Any] = {"tail": None, "since": None, "timestamps": False, **kw}
        return b"".join(logfile.follow(info(log), stop=threading.Event(), **opts))

    assert logfile.usable(info(log)) and logfile.files(info(log)) == 3
    assert read() == b"a\nb\nc\nd"  # rotated files first, stdout and stderr merged, partial entries
    assert read(tail=2) == b"c\nd" and read(tail=0) == b"" and read(tail=9) == b"a\nb\nc\nd"
    assert read(timestamps=True, tail=2) == (
        b"2026-12-07T10:00:02.123456789Z c\n2026-12-07T10:00:03.100000000Z d"
    )
    since = 1796637601.5  # 2026-12-07T10:00:01.5Z: the entries at or after it
    assert logfile.since_stamp(since) == "2026-12-07T10:00:01.500000000Z"
    assert read(since=since) == b"b\nc\nd" and read(since=since, tail=1) == b"d"
    assert not logfile.usable({**info(log), "HostConfig": {"LogConfig": {"Type": "local"}}})
    assert not logfile.usable(info(tmp_path / "absent"))


def test_follow_reads_through_rotations_until_the_process_is_gone(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_bytes(entry("old\n", "2026-12-07T10:00:00Z"))
    proc = subprocess.Popen(["sleep", "60"])
    got: list[bytes] = []
    t = collect(logfile.follow(info(log, proc.pid), tail=None, since=None, timestamps=False,
                               stop=threading.Event()), got)  # fmt: skip  # history or not: the same
    try:
        with open(log, "ab") as f:
            f.write(entry("one\n", "2026-12-07T10:00:01Z") + b'{"log":"tw')
            f.flush()
            eventually(lambda: b"".join(got) == b"old\none\n", 10, "the new entry followed")
            f.write(b'o\\n","stream":"stdout","time":"2026-12-07T10:00:02Z"}\n')
        os.rename(log, f"{log}.1")  # the engine's rotation
        log.write_bytes(entry("three\n", "2026-12-07T10:00:03Z"))
        eventually(lambda: b"".join(got) == b"old\none\ntwo\nthree\n", 10, "read on through the rotation")
        assert t.is_alive()
    finally:
        proc.kill()
        proc.wait()
    with open(log, "ab") as f:  # the engine's last lines, after the process ended
        f.write(entry("last\n", "2026-12-07T10:00:04Z"))
    t.join(10)
    assert not t.is_alive() and b"".join(got) == b"old\none\ntwo\nthree\nlast\n"


def test_the_session_stops_a_quiet_follow(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_bytes(b"")
    stop = threading.Event()
    got: list[bytes] = []
    t = collect(logfile.follow(info(log, os.getpid()), tail=None, since=None, timestamps=False,
                               stop=stop), got)  # fmt: skip
    stop.set()
    t.join(5)
    assert not t.is_alive() and got == []
