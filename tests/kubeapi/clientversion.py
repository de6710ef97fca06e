"""The minor version of the kubectl a test drives: a few commands and flags are newer than the
oldest client the suite runs with (Debian ships kubectl 1.20)."""

from __future__ import annotations

import functools
import json
import re
import subprocess

from tests.kubeapi.conftest import Kubectl


@functools.cache
def _minor_of(binary: str) -> int:
    out = subprocess.run(
        [binary, "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    )
    return int(re.sub(r"\D.*", "", json.loads(out.stdout)["clientVersion"]["minor"]))


def minor(k: Kubectl) -> int:
    k.argv()  # fails the test when no kubectl is installed
    assert k.binary is not None
    return _minor_of(k.binary)


def show_managed_fields(k: Kubectl) -> list[str]:
    """`--show-managed-fields` (1.21+); older clients always print managedFields."""
    return ["--show-managed-fields"] if minor(k) >= 21 else []
