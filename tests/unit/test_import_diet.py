"""Short commands start fast (issue 14): `status`, `version` and `--help` import what parses and
renders them, nothing a command that does the work needs (asyncio, TLS, the Kubernetes client, crypto,
Docker, sqlite, YAML) — those are imported once the command is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("asyncio", "ssl", "httpx", "lightkube", "cryptography", "docker", "sqlite3", "yaml", "aiohttp",
         "websockets", "uvloop", "runtime.kube", "runtime.cloud.cloudcore", "runtime.edge.run")  # fmt: skip

PROBE = """
import json, sys
sys.argv = ["kedge", *json.loads(sys.argv[1])]
from kubeedge_cli.main import main
try:
    main()
except SystemExit:
    pass
print("MODULES=" + json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("words", [["version"], ["--help"], ["-o", "json", "status"], ["status"]])
def test_short_commands_import_nothing_heavy(words: list[str], tmp_path: Path) -> None:
    argv = ["--root", str(tmp_path), *words] if words != ["--help"] else words
    probe = [sys.executable, "-c", PROBE, json.dumps(argv)]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
    line = next((x for x in done.stderr.splitlines() if x.startswith("MODULES=")), None)
    assert line, done.stderr
    loaded = set(json.loads(line.removeprefix("MODULES=")))
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], f"`kedge {' '.join(words)}` imported {heavy}"
