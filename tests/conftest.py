"""Suite-wide setup: every module in tests/fixtures/ is a pytest plugin, the environment is clean, and
every test that needs a real outside part carries its marker.

Drop a file into tests/fixtures/ and its fixtures are available everywhere — no edit here needed.

Markers (pyproject.toml): `docker` (the Docker engine), `broker` (mosquitto), `kubectl`, `root`. A test
gets them from the fixtures it uses (`BY_FIXTURE`), from its folder (`BY_FOLDER`) or from its own
`pytestmark`; a marked test then requires the part (`tests.fixtures.require`: skip here, fail under CI).
So `./scripts/test.sh -m "not docker"` is the quick loop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `tests.fixtures...` and the packages import from the checkout
    sys.path.insert(0, str(ROOT))

pytest.register_assert_rewrite("tests.fixtures")  # fixture modules import each other
pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (ROOT / "tests" / "fixtures").glob("*.py") if p.stem != "__init__"
)

# Variables that change kedge's or kubectl's behaviour; a developer's shell must not leak into tests.
# KEDGE_TEST_* (test configuration, e.g. KEDGE_TEST_KUBECONFIG), KEDGE_BIN (binary under test) and
# KEDGE_DATA_DIR (where it unpacks: one folder for the run, not one per test root) stay.
_KEEP = ("KEDGE_TEST_", "KEDGE_BIN", "KEDGE_DATA_DIR")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for name in list(os.environ):
        if name.startswith("KEDGE_") and not name.startswith(_KEEP):
            monkeypatch.delenv(name)
    yield


# marker -> what `require` checks for it
REQUIRES = {"docker": "docker", "broker": "mosquitto", "kubectl": "kubectl", "root": "root"}
# Fixtures that start or talk to those parts (`name=param` for a parametrized fixture's one case).
BY_FIXTURE: dict[str, tuple[str, ...]] = {
    "docker_client": ("docker",),
    "busybox_image": ("docker",),
    "docker_cleanup": ("docker",),
    "pod_env": ("docker",),
    "private_dockerd": ("docker", "root"),
    "e2e": ("docker", "kubectl"),
    "mosquitto": ("broker",),
    "any_broker=mosquitto": ("broker",),
    "kubectl": ("kubectl",),
    "kctl": ("kubectl",),
    "bare_image": ("docker",),
}
BY_FOLDER: dict[str, tuple[str, ...]] = {
    "tests/e2e/": ("docker", "kubectl"),
    "tests/integration/pods/": ("docker",),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `slow` tests (the long fault scenarios) run only when asked for: `-m slow` or KEDGE_TEST_SLOW=1
    # (scripts/test.sh runs them once under CI=true).
    slow_wanted = "slow" in (config.getoption("markexpr") or "") or os.environ.get("KEDGE_TEST_SLOW") == "1"
    for item in items:
        if not slow_wanted and item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.skip(reason="slow: run with -m slow or KEDGE_TEST_SLOW=1"))
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        names |= {f"{k}={v}" for k, v in params.items()}
        needs = {m for n in names for m in BY_FIXTURE.get(n, ())}
        needs |= {m for folder, marks in BY_FOLDER.items() if item.nodeid.startswith(folder) for m in marks}
        for marker in sorted(needs - {m.name for m in item.iter_markers()}):
            item.add_marker(marker)


@pytest.fixture(autouse=True)
def _required_parts(request: pytest.FixtureRequest) -> None:
    from tests.fixtures import require  # after register_assert_rewrite above

    for marker, part in REQUIRES.items():
        if request.node.get_closest_marker(marker) is not None:
            require(part)
