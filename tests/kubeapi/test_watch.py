"""Watch: event order, resume from a resourceVersion, 410 Gone, selectors, timeouts."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.kubeapi.conftest import CLUSTER_MADE, Kube, configmap


class _Stream:
    """A raw HTTPS watch connection whose reader can be stopped safely from another thread.

    Closing an httpx client while a thread is blocked reading it frees the file descriptor under the
    reader; the next test's connection may get the same descriptor and lose TLS records to the stale
    reader. shutdown() wakes the reader first, the socket is closed only after it has returned.
    """

    def __init__(self, kube: Kube, path: str, params: dict[str, str]) -> None:
        url = httpx.URL(kube.server.url)
        ctx = ssl.create_default_context(cafile=str(kube.server.ca_file))
        raw = socket.create_connection((url.host, url.port or 443), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname=url.host)
        self.sock.settimeout(None)
        query = str(httpx.QueryParams({"watch": "1", **params}))
        self.sock.sendall(
            f"GET {path}?{query} HTTP/1.1\r\nHost: {url.host}\r\n"
            f"Authorization: Bearer {kube.server.token}\r\nAccept: application/json\r\n\r\n".encode()
        )
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def status(self) -> int:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed before headers")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return int(head.split(b" ", 2)[1])

    def chunks(self) -> Iterator[bytes]:
        while True:
            while b"\r\n" not in self.buf:
                if not self._fill():
                    return
            size_line, rest = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                if not self._fill():
                    return
                rest = self.buf.split(b"\r\n", 1)[1]
            if size == 0:
                return
            yield rest[:size]
            self.buf = rest[size + 2 :]


@contextmanager
def watching(kube: Kube, path: str, **params: str) -> Iterator[queue.Queue[dict[str, Any]]]:
    """Events of a watch, read on a thread, as a queue (the stream is open once this yields)."""
    q: queue.Queue[dict[str, Any]] = queue.Queue()
    stream = _Stream(kube, path, params)
    assert stream.status() == 200

    def run() -> None:
        pending = b""
        try:
            for chunk in stream.chunks():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        q.put(json.loads(line))
            q.put({"type": "_CLOSED"})
        except OSError as exc:
            q.put({"type": "_ERROR", "error": repr(exc)})

    t = threading.Thread(target=run, daemon=True)
    t.start()  # no sleep for the server to register the watch: the tests watch from a resourceVersion
    # (what was written since comes from the history, registered or not) or first take the initial events
    try:
        yield q
    finally:
        with contextlib.suppress(OSError):
            stream.sock.shutdown(socket.SHUT_RDWR)
        t.join(10)
        stream.sock.close()


def take(q: queue.Queue[dict[str, Any]], n: int, timeout: float = 10) -> list[tuple[str, str]]:
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        ev = q.get(timeout=max(0.01, deadline - time.monotonic()))
        assert "object" in ev, ev
        if ev["type"] == "BOOKMARK" or ev["object"]["metadata"].get("name") in CLUSTER_MADE:
            continue  # objects the cluster's own controllers add to every namespace are not ours
        out.append((ev["type"], ev["object"]["metadata"].get("name", "")))
    return out


def test_watch_from_list_resource_version_sees_changes_in_order(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    kube.post(path, configmap("before"))
    rv = kube.get(path).json()["metadata"]["resourceVersion"]
    with watching(kube, path, resourceVersion=rv) as q:
        created = kube.post(path, configmap("a")).json()
        kube.put(f"{path}/a", dict(created, data={"x": "1"}))
        kube.delete(f"{path}/a")
        assert take(q, 3) == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


def test_watch_without_resource_version_starts_with_current_state(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    kube.post(path, configmap("x"))
    kube.post(path, configmap("y"))
    with watching(kube, path) as q:
        assert sorted(take(q, 2)) == [("ADDED", "x"), ("ADDED", "y")]
        kube.post(path, configmap("z"))
        assert take(q, 1) == [("ADDED", "z")]


def test_watch_resumes_from_a_past_resource_version(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    first = kube.post(path, configmap("a")).json()
    kube.post(path, configmap("b"))
    kube.delete(f"{path}/a")
    with watching(kube, path, resourceVersion=first["metadata"]["resourceVersion"]) as q:
        assert take(q, 2) == [("ADDED", "b"), ("DELETED", "a")]


def test_watch_from_expired_resource_version_is_410_gone(kube: Kube, ns: str) -> None:
    with watching(kube, f"/api/v1/namespaces/{ns}/configmaps", resourceVersion="1") as q:
        ev = q.get(timeout=10)
    assert ev["type"] == "ERROR"
    assert ev["object"]["kind"] == "Status"
    assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"


def test_watch_with_label_selector_sends_deleted_when_object_stops_matching(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv = kube.get(path).json()["metadata"]["resourceVersion"]
    with watching(kube, path, resourceVersion=rv, labelSelector="app=web") as q:
        kube.post(path, configmap("other", labels={"app": "db"}))
        kube.post(path, configmap("w", labels={"app": "web"}))
        kube.patch(f"{path}/w", {"metadata": {"labels": {"app": "db"}}}, "application/merge-patch+json")
        kube.patch(f"{path}/w", {"metadata": {"labels": {"app": "web"}}}, "application/merge-patch+json")
        assert take(q, 3) == [("ADDED", "w"), ("DELETED", "w"), ("ADDED", "w")]


def test_watch_timeout_seconds_ends_the_stream(kube: Kube, ns: str) -> None:
    start = time.monotonic()
    with watching(kube, f"/api/v1/namespaces/{ns}/configmaps", timeoutSeconds="1") as q:
        while True:
            ev = q.get(timeout=10)
            if ev["type"] in ("_CLOSED", "_ERROR"):
                break
    assert ev["type"] == "_CLOSED"
    assert time.monotonic() - start < 8


def test_watch_single_object_by_field_selector(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    rv = kube.get(path).json()["metadata"]["resourceVersion"]
    with watching(kube, path, resourceVersion=rv, fieldSelector="metadata.name=b") as q:
        kube.post(path, configmap("a"))
        kube.post(path, configmap("b"))
        assert take(q, 1) == [("ADDED", "b")]


def test_watch_all_namespaces(kube: Kube, ns: str) -> None:
    rv = kube.get("/api/v1/configmaps").json()["metadata"]["resourceVersion"]
    with watching(kube, "/api/v1/configmaps", resourceVersion=rv, labelSelector=f"t={ns}") as q:
        kube.post(f"/api/v1/namespaces/{ns}/configmaps", configmap("a", labels={"t": ns}))
        assert take(q, 1) == [("ADDED", "a")]


def test_watch_bookmark_before_timeout(kube: Kube, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    kube.post(path, configmap("a"))
    rv = kube.get(path).json()["metadata"]["resourceVersion"]
    with watching(kube, path, resourceVersion=rv, allowWatchBookmarks="true", timeoutSeconds="5") as q:
        events = []
        while True:
            ev = q.get(timeout=15)
            if ev["type"] in ("_CLOSED", "_ERROR"):
                break
            events.append(ev)
    marks = [e for e in events if e["type"] == "BOOKMARK"]
    assert marks, events
    assert marks[0]["object"]["kind"] == "ConfigMap"
    assert marks[0]["object"]["metadata"]["resourceVersion"]
