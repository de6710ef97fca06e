#!/usr/bin/env bash
# The test command (README.md, .ci/run): install what is missing, then ruff, mypy and pytest.
# Arguments go to pytest (default: the whole suite, -q). Exits non-zero on any failure, and when
# pytest ran no test (its exit code 5 is passed through).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_all

log "ruff check ."
"$VENV/bin/ruff" check .
log "mypy (files from pyproject.toml)"
"$VENV/bin/mypy"

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-q)
log "pytest ${args[*]}"
exec "$VENV/bin/python" -m pytest "${args[@]}"
