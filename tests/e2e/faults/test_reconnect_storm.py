"""Scenario 8: 1,000 simulated edges reconnecting at once after the cloud is SIGKILLed and restarted
(scripts/bench/reconnect_storm.py: real mTLS sessions to a real `kedge cloud run`, the embedded API
server's node-lifecycle controller running, a pod on every 10th edge that an unreachable node would
lose at once). Every edge is back and Ready, none ever turned not Ready or unreachable, no pod
evicted, nothing left unacknowledged. The figures (time until all Ready, renewal lag, reconnect rate,
dial failures, messages the restarted cloud sent) are the bench's JSON line, printed here; no timing
is asserted.

    pytest tests/e2e/faults/test_reconnect_storm.py -s -m slow
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO

EDGES = 1000


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_1000_edges_reconnect_after_a_cloud_restart_all_ready_none_evicted() -> None:
    bench = Path(REPO) / "scripts" / "bench" / "reconnect_storm.py"
    done = subprocess.run(
        [sys.executable, str(bench), "--edges", str(EDGES), "--timeout", "900"],
        capture_output=True,
        text=True,
        timeout=1700,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    f = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({"scenario": "reconnect-storm", **f}, sort_keys=True), flush=True)
    assert f["reconnected"] == EDGES and f["connected_at_end"] == EDGES, f
    assert f["nodes_ever_not_ready"] == 0 and f["nodes_not_ready_at_end"] == 0, f
    assert f["pods_evicted"] == 0 and f["pending_acks_at_end"] == 0, f
