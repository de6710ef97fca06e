"""What the idle edge imports: `kedge edge run`'s modules, loaded in a fresh interpreter as the launcher
loads them, must not pull in what the idle edge does not use (docs/benchmarks.md, the device plane's
40 MB idle goal): the CLI's libraries, gRPC (loaded when the first DMI mapper connects:
tests/dmi/test_dmi_lazy.py), prometheus_client (first scrape or pod sync) and the pod manager (first
pod). The same interpreter then uses metrics and the pod manager, so the names checked are the ones
that really load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from runtime.edge.metrics import EdgeMetrics
from tests.fixtures import REPO

NEVER = ("typer", "click", "rich", "lightkube", "cryptography", "httpx", "docker", "requests")
LATER = ("grpclib", "h2", "google.protobuf", "prometheus_client", "http.server", "wsgiref",
         "runtime.edge.pods.manager", "runtime.edge.pods.worker", "fractions")  # fmt: skip

SCRIPT = """
import json, sys
import runtime.edge.launcher, runtime.edge.run
from runtime.edge.metrics import EdgeMetrics
metrics = EdgeMetrics(dict)
idle = sorted(sys.modules)
metrics.exposition({})
import runtime.edge.pods.manager
import runtime.edge.devices.dmi.server
print(json.dumps({"idle": idle, "used": sorted(sys.modules)}))
"""


def _loaded(names: list[str], wanted: tuple[str, ...]) -> list[str]:
    return [w for w in wanted if any(n == w or n.startswith(w + ".") for n in names)]


def test_the_idle_edge_imports_neither_the_cli_nor_grpc_metrics_or_the_pod_manager() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-P", "-c", SCRIPT], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    got = json.loads(out.stdout)
    assert _loaded(got["idle"], NEVER + LATER) == []
    assert _loaded(got["used"], LATER) == list(LATER)  # the names above are the modules that load later
    assert _loaded(got["used"], NEVER) == []


def test_metrics_families_are_made_on_first_use_with_the_histogram_empty_until_a_pod_syncs() -> None:
    m = EdgeMetrics(lambda: {("sent", "insert", "pod"): 3})
    assert not m.loaded
    text = m.exposition({})[0].decode()
    assert m.loaded
    assert "kedge_edge_pod_sync_duration_seconds_count 0.0" in text
    assert 'kedge_edge_messages_total{direction="sent",operation="insert",type="pod"} 3.0' in text
    m.observe_pod_sync(0.3)
    text = m.exposition({})[0].decode()
    assert "kedge_edge_pod_sync_duration_seconds_count 1.0" in text
    assert 'kedge_edge_pod_sync_duration_seconds_bucket{le="0.5"} 1.0' in text


def test_a_pod_sync_before_any_scrape_loads_the_families_and_is_counted() -> None:
    m = EdgeMetrics(dict)
    m.observe_pod_sync(2.0)
    assert m.loaded
    assert "kedge_edge_pod_sync_duration_seconds_count 1.0" in m.exposition({})[0].decode()


ARENAS = """
import json, os, sys
from runtime.edge.launcher import _limit_arenas
_limit_arenas()
print(json.dumps({"env": os.environ.get("MALLOC_ARENA_MAX"), "ctypes": "ctypes" in sys.modules}))
"""


def _arenas(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-P", "-c", ARENAS], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    return dict(json.loads(out.stdout))


def test_malloc_arenas_set_by_the_starter_are_kept_and_ctypes_is_not_loaded() -> None:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    base["PYTHONPATH"] = str(REPO)
    assert _arenas({**base, "MALLOC_ARENA_MAX": "4"}) == {"env": "4", "ctypes": False}
    assert _arenas(base) == {"env": "2", "ctypes": True}  # started by hand: mallopt through ctypes
