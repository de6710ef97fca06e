"""The shared kube-validation corpus: a real kube-apiserver 1.28.7's answers to valid and invalid writes
(status, reason, message, causes in order, stored objects), replayed against the embedded server with
the corpus's own replay.py (a real program, run as a subprocess; it never reaches product code).

Every case listed in data/kube-validation-passing.txt must give the recorded answer. The corpus lives in
../shared/kube-validation beside the checkout (CI) — the test skips with one line when it is absent.
With KEDGE_TEST_KUBECONFIG the same cases run against that server instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.apiserver import ApiServer, _external, start_apiserver
from tests.fixtures.procs import stop

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "kube-validation"
PASSING = [
    line.strip()
    for line in (Path(__file__).parent / "data" / "kube-validation-passing.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.fixture(scope="module", params=["in-memory", "sqlite"])
def answers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One replay of every listed case (each in its own namespace), verdicts by case id — against the
    tests' usual `--in-memory` server and against the storage `kedge apiserver --no-controllers` runs
    with by default (sqlite: a write's events come a loop turn later, which once let the CRD naming
    step's write leak into the create's answer)."""
    if not (CORPUS / "replay.py").exists() or not (CORPUS / "cases.json").exists():
        pytest.skip(f"kube-validation corpus not found at {CORPUS}")
    server: ApiServer | None = _external()
    embedded = server is None
    if not embedded and request.param != "in-memory":
        pytest.skip("KEDGE_TEST_KUBECONFIG names the server: replayed once")
    work = tmp_path_factory.mktemp("kube-validation")
    if server is None:
        server = start_apiserver(work / "apiserver", in_memory=request.param == "in-memory")
    try:
        report = work / "report.json"
        done = subprocess.run(
            [
                sys.executable,
                str(CORPUS / "replay.py"),
                "--kubeconfig",
                str(server.kubeconfig),
                "--only",
                ",".join(PASSING),
                "--report",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert report.exists(), done.stdout + done.stderr
        yield {r["id"]: r for r in json.loads(report.read_text())}
    finally:
        if embedded and server.proc is not None:
            stop(server.proc)


@pytest.mark.parametrize("case_id", PASSING)
def test_answer_matches_the_real_server(answers: dict[str, Any], case_id: str) -> None:
    verdict = answers.get(case_id)
    assert verdict is not None, f"{case_id} is not in the corpus"
    assert verdict["ok"], f"{case_id}: {verdict['diff']}"
