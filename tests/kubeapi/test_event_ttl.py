"""Events expire TTL after their last write, as with kube-apiserver's --event-ttl; until then they
are stored like any object (kept across a restart). A real `kedge apiserver --event-ttl`, kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.fixtures import require
from tests.fixtures.kube import RestartableApiServer
from tests.fixtures.wait import eventually


def kubectl(api: RestartableApiServer, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(api.kubeconfig), *args],
        input=stdin, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout


def event(name: str, stamp: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u-1"},
        "reason": "Started", "message": "Started container app", "type": "Normal", "count": 1,
        "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "kubelet", "host": "n1"},
    })  # fmt: skip


def names(api: RestartableApiServer) -> list[str]:
    doc: dict[str, Any] = json.loads(kubectl(api, "get", "events", "-o", "json"))
    return sorted(e["metadata"]["name"] for e in doc["items"])


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def test_an_event_expires_after_the_configured_ttl_from_its_last_write(tmp_path: Path) -> None:
    require("kubectl")
    api = RestartableApiServer(tmp_path, extra=["--event-ttl", "4"])
    api.start()
    try:
        kubectl(api, "create", "-f", "-", stdin=event("a.1", now_iso()))
        kubectl(api, "create", "-f", "-", stdin=event("b.1", now_iso()))
        assert names(api) == ["a.1", "b.1"]
        time.sleep(2)
        # a later write (count and lastTimestamp moved, as the edge's correlator patches) keeps it
        patch = json.dumps({"count": 2, "lastTimestamp": now_iso()})
        kubectl(api, "patch", "event", "b.1", "--type", "strategic", "-p", patch)
        eventually(lambda: names(api) == ["b.1"], 10, "a.1 to expire")
        eventually(lambda: names(api) == [], 10, "b.1 to expire, TTL after its last write")
    finally:
        api.stop()


def test_events_are_durable_across_a_restart_until_their_ttl(tmp_path: Path) -> None:
    require("kubectl")
    api = RestartableApiServer(tmp_path)  # default TTL: one hour
    api.start()
    try:
        kubectl(api, "create", "-f", "-", stdin=event("kept.1", now_iso()))
        old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7200))
        kubectl(api, "create", "-f", "-", stdin=event("old.1", old))
        api.kill()  # SIGKILL: nothing flushed on the way out
        api.start()
        # the event written now is kept; the creation of the other was its last write, so it stays too
        assert names(api) == ["kept.1", "old.1"]
        sel = "involvedObject.kind=Pod,involvedObject.name=web,involvedObject.uid=u-1"
        got = json.loads(kubectl(api, "get", "events", "--field-selector", sel, "-o", "json"))["items"]
        assert len(got) == 2
    finally:
        api.stop()
