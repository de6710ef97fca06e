"""Suite-wide setup: every module in tests/fixtures/ is a pytest plugin, and the environment is clean.

Drop a file into tests/fixtures/ and its fixtures are available everywhere — no edit here needed.
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
