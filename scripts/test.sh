#!/usr/bin/env bash
# The test command (README.md, .ci/run): install what is missing, then ruff, mypy and pytest.
# Arguments go to pytest (default: the whole suite, -q). Every stage runs even when an earlier one
# failed, so one run reports everything; the exit code is non-zero if any stage failed, and pytest's
# own code (5: no test ran) wins when pytest failed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_all

failed=()
log "ruff check ."
"$VENV/bin/ruff" check . || failed+=(ruff)
log "ruff format --check ."
"$VENV/bin/ruff" format --check . || failed+=(ruff-format)
log "mypy (files from pyproject.toml)"
"$VENV/bin/mypy" || failed+=(mypy)

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-q)
log "pytest ${args[*]}"
rc=0
"$VENV/bin/python" -m pytest "${args[@]}" || rc=$?
[ "$rc" = 0 ] || failed+=("pytest (exit $rc)")

if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    [ "$rc" != 0 ] && exit "$rc"
    exit 1
fi
log "all checks passed"
