#!/usr/bin/env bash
# The test command (README.md, .ci/run): install what is missing, then ruff, mypy and pytest.
# Arguments go to pytest (default: the whole suite, -q). Every stage runs even when an earlier one
# failed, so one run reports everything; the exit code is non-zero if any stage failed, and pytest's
# own code (5: no test ran) wins when pytest failed.
#
# Under CI=true with no arguments it also builds the executable (scripts/build.sh) before pytest — the
# tests about the executable itself (tests/binary) use dist/kedge then and fail without it — and
# afterwards runs the tests that start kedge as a subprocess a second time against it
# (KEDGE_BIN=dist/kedge, one KEDGE_DATA_DIR for the run; the fault scenarios not twice), and last the
# tests marked `slow` (the long fault scenarios, skipped otherwise) once.
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

# The tests that run kedge as a subprocess (tests/fixtures/procs.py KEDGE): again against the executable.
BINARY_TESTS=(
    tests/binary tests/e2e tests/unit/test_cli.py tests/unit/test_cli_rough_edges.py
    tests/edge/test_join.py tests/edge/test_join_real_cloud.py tests/edge/test_kill9_runtime.py
    tests/edge/test_preflight.py tests/edge/test_status.py
    tests/cloud/test_init.py tests/cloud/test_bootstrap_cloud_run.py tests/cloud/test_controllers_process.py
    tests/integration/pods/test_autonomy.py tests/integration/test_real_parts.py tests/kubeapi/test_robustness.py
)
binary_stage=""
if [ $# -eq 0 ] && [ "${CI:-}" = true ]; then
    binary_stage=1
    log "build the executable (scripts/build.sh)"
    ./scripts/build.sh || failed+=(build)
fi

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-q)
[ -z "$binary_stage" ] || args+=(--ignore=tests/binary)  # they run once, in the stage against the executable
log "pytest ${args[*]}"
rc=0
"$VENV/bin/python" -m pytest "${args[@]}" || rc=$?
[ "$rc" = 0 ] || failed+=("pytest (exit $rc)")

if [ -n "$binary_stage" ]; then
    data="$(mktemp -d)"
    chmod 700 "$data"
    log "pytest -q against the executable: KEDGE_BIN=dist/kedge ${BINARY_TESTS[*]}"
    brc=0
    KEDGE_BIN="$PWD/dist/kedge" KEDGE_DATA_DIR="$data" "$VENV/bin/python" -m pytest -q "${BINARY_TESTS[@]}" \
        --ignore=tests/e2e/faults || brc=$?
    rm -rf "$data"
    [ "$brc" = 0 ] || failed+=("pytest with KEDGE_BIN (exit $brc)")
    [ "$rc" != 0 ] || rc=$brc
fi

if [ -n "$binary_stage" ]; then  # the long fault scenarios (tests marked slow): once per CI run
    log "pytest -q -m slow (long fault scenarios, once)"
    src=0
    "$VENV/bin/python" -m pytest -q -m slow || src=$?
    [ "$src" = 0 ] || failed+=("pytest -m slow (exit $src)")
    [ "$rc" != 0 ] || rc=$src
fi

if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    [ "$rc" != 0 ] && exit "$rc"
    exit 1
fi
log "all checks passed"
