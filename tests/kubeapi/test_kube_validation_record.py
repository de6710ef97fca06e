"""The corpus recorder (tests/kubeapi/recorder.py): recorded from the embedded server, every case the
embedded server answers as the real one did comes out exactly as the real server's recording — so
the normalisation leaves nothing run-specific (uids, resourceVersions, timestamps, managedFields times,
generated names, clusterIPs, nodePorts) and adds no difference. With KEDGE_TEST_KUBECONFIG the whole
corpus is recorded from that real server, and the recording replays against it without a difference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apiserver import ApiServer, _external, start_apiserver
from tests.fixtures.procs import stop
from tests.kubeapi import recorder
from tests.kubeapi.test_kube_validation import CORPUS, PASSING


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    if not (CORPUS / "replay.py").exists():
        pytest.skip(f"kube-validation corpus not found at {CORPUS}")
    doc: dict[str, Any] = json.loads((CORPUS / "cases.json").read_text())
    return doc


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_apiserver(tmp_path_factory.mktemp("record") / "apiserver")
    yield server
    assert server.proc is not None
    stop(server.proc)


def _ordered(case: dict[str, Any]) -> dict[str, Any]:
    """The expected answer with `causes: set` causes in one order (the recorder's sorted one)."""
    expect: dict[str, Any] = json.loads(json.dumps(case["expect"]))
    if (case.get("compare") or {}).get("causes") == "set":
        details = expect["body"]["details"]
        details["causes"] = sorted(details["causes"], key=recorder._key)
        expect["body"]["message"] = "<set>"
    return expect


def test_recording_of_the_embedded_server_equals_the_real_one(
    corpus: dict[str, Any], embedded: ApiServer
) -> None:
    recorded = recorder.record(embedded.kubeconfig, CORPUS / "cases.json", runs=2, only=PASSING)
    real = {c["id"]: c for c in corpus["cases"]}
    got = {c["id"]: c for c in recorded["cases"]}
    assert len(got) == len(real)
    for case_id in PASSING:
        assert got[case_id].get("compare") == real[case_id].get("compare"), case_id
        assert _ordered(got[case_id]) == _ordered(real[case_id]), case_id
    # what is left unrecorded stays as it was
    for case_id in set(real) - set(PASSING):
        assert got[case_id] == real[case_id]


def test_record_from_a_real_server(corpus: dict[str, Any], tmp_path: Path) -> None:
    server = _external()
    if server is None:
        pytest.skip("KEDGE_TEST_KUBECONFIG not set: no real kube-apiserver to record the corpus from")
    out = tmp_path / "cases.json"
    assert recorder.main(["--kubeconfig", str(server.kubeconfig), "--out", str(out), "--runs", "2"]) == 0
    recorded = json.loads(out.read_text())
    assert [c["id"] for c in recorded["cases"]] == [c["id"] for c in corpus["cases"]]
    assert all("expect" in c for c in recorded["cases"])
    again = recorder.replay_report(CORPUS, out, server.kubeconfig, ())
    assert {r["id"] for r in again} == {c["id"] for c in recorded["cases"]}
    assert [f"{r['id']}: {r['diff']}" for r in again if not r["ok"]] == []
    if os.environ.get("KEDGE_TEST_RECORD_OUT"):
        Path(os.environ["KEDGE_TEST_RECORD_OUT"]).write_text(out.read_text())


def test_runs_merge_to_what_they_share() -> None:
    runs = [
        {"status": 201, "body": {"metadata": {"name": "a", "x": 1}, "items": [1, 2]}},
        {"status": 201, "body": {"metadata": {"name": "a", "x": 2}, "items": [1, 3]}},
    ]
    assert recorder.merge(runs) == {
        "status": 201,
        "body": {"metadata": {"name": "a", "x": recorder.VARIES}, "items": [1, recorder.VARIES]},
    }
    assert recorder.merge([[1], [1, 2]]) == recorder.VARIES


def test_causes_in_another_order_are_recorded_as_a_set() -> None:
    def answer(*fields: str) -> dict[str, Any]:
        causes = [{"reason": "FieldValueInvalid", "message": "m", "field": f} for f in fields]
        return {"status": 422, "body": {"message": "x", "details": {"causes": causes}}}

    case = {"id": "c", "request": {"method": "POST", "path": "/p"}}
    rec = recorder.record_case(case, [answer("spec.a", "spec.b"), answer("spec.b", "spec.a")])
    assert rec["compare"] == {"causes": "set"}
    assert [c["field"] for c in rec["expect"]["body"]["details"]["causes"]] == ["spec.a", "spec.b"]
    assert "compare" not in recorder.record_case(case, [answer("spec.b", "spec.a")] * 2)
    labels = recorder.record_case(case, [answer("metadata.labels", "metadata.labels")])
    assert labels["compare"] == {"causes": "set"}
