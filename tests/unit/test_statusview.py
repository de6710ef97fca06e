"""How `kedge status` renders (kubeedge_cli/statusview.py) and the STATUS column of edge pods."""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubeedge_cli import statusview
from runtime.edge.pods.status import display_status


def test_json_has_camelcase_keys_and_iso_times() -> None:
    body = {
        "edge": {
            "since": 1796629463.66,
            "cloud": {"last_contact": 0, "peer_kind": "kedge", "last_error": "", "since": None},
            "certificate": {"notAfter": 1828178623.0},
            "cache": {"objects": {"pod_x": 1}, "lastSync": 1796629463},
            "pods": [{"namespace": "a", "age": 5}],
        },
        "cloud": {"checkedAt": 1796629463.66, "addresses": {"health_x": "h:1"}, "running": True},
    }
    out = statusview.for_json(body)
    assert out["edge"]["since"] == "2026-12-07T07:44:23Z"
    assert out["edge"]["cloud"] == {"lastContact": "1970-01-01T00:00:00Z", "peerKind": "kedge",
                                    "lastError": "", "since": None}  # fmt: skip
    assert out["edge"]["certificate"]["notAfter"] == "2027-12-07T11:23:43Z"
    assert out["edge"]["cache"]["objects"] == {"pod_x": 1}  # data keys stay as they are
    assert out["edge"]["pods"] == [{"namespace": "a", "age": 5}]
    assert out["cloud"] == {"checkedAt": "2026-12-07T07:44:23Z", "addresses": {"health_x": "h:1"},
                            "running": True}  # fmt: skip


def _status(
    phase: str, *containers: dict[str, Any], inits: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"phase": phase, "containerStatuses": list(containers), "initContainerStatuses": inits or []}


@pytest.mark.parametrize(
    ("status", "deleting", "shown"),
    [
        (_status("Pending", {"state": {"waiting": {"reason": "ImagePullBackOff"}}}), False,
         "ImagePullBackOff"),
        (_status("Running", {"state": {"running": {}}, "ready": True}), True, "Terminating"),
        (_status("Running", {"state": {"running": {}}, "ready": True}), False, "Running"),
        (_status("Running", {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}), False,
         "CrashLoopBackOff"),
        (_status("Succeeded", {"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}), False,
         "Completed"),
        (_status("Failed", {"state": {"terminated": {"exitCode": 3}}}), False, "ExitCode:3"),
        (_status("Pending", {"state": {"waiting": {"reason": "PodInitializing"}}},
                 inits=[{"state": {"waiting": {"reason": "ErrImagePull"}}}]), False, "Init:ErrImagePull"),
        (_status("Pending", inits=[{"state": {"running": {}}}]), False, "Init:0/1"),
        ({}, False, "Pending"),
    ],
)  # fmt: skip
def test_pod_status_is_what_kubectl_shows(status: dict[str, Any], deleting: bool, shown: str) -> None:
    assert display_status(status, deleting=deleting) == shown


def test_connection_errors_in_words() -> None:
    refused = "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 1)"
    assert statusview.words(refused).startswith("connection refused: nothing listens there (")
    assert "HTTP 404: not a cloud hub" in statusview.words(
        "InvalidStatus: server rejected WebSocket connection: HTTP 404"
    )
    assert statusview.words("something else") == "something else"


def test_edge_section_counts_disconnected_from_the_disconnect(capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    edge = {
        "running": True, "healthy": False, "process": {"pid": 7},
        "cloud": {"server": "c:1", "connected": False, "since": now - 5, "last_contact": now - 300,
                  "last_error": "ConnectionRefusedError: [Errno 111] Connect call failed"},
        "node": {"name": "n"}, "certificate": {}, "cache": {},
        "pods": [{"namespace": "d", "name": "p", "phase": "Pending", "status": "ImagePullBackOff",
                  "ready": "0/1", "restarts": 0, "age": 4000}],
    }  # fmt: skip
    statusview.print_sections({"edge": edge})
    out = capsys.readouterr().out
    assert "DISCONNECTED since 5s ago" in out
    assert "problem       connection refused: nothing listens there" in out
    assert "ImagePullBackOff" in out and "66m" in out and "Pending" not in out


def test_apiserver_section_names_failing_checks(capsys: pytest.CaptureFixture[str]) -> None:
    statusview.print_sections(
        {"apiserver": {"running": True, "healthy": False, "server": "https://127.0.0.1:6443", "message": "",
                       "checks": {"ping": "ok", "controller/deployment": "reconcile: boom"}}}
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "running, https://127.0.0.1:6443" in out and "1 of 2 ok" in out
    assert "problem     controller/deployment: reconcile: boom" in out
