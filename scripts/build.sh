#!/usr/bin/env bash
# Build the one-file executable dist/kedge from build.spec and prove it runs.
# Not part of test.sh (it takes minutes); run tests against the binary with KEDGE_BIN=dist/kedge.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_venv build  # pyinstaller (the `build` extra) beside the runtime dependencies
log "pyinstaller build.spec"
"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN build.spec
log "dist/kedge version -o json"
dist/kedge version -o json
dist/kedge --help >/dev/null
log "built $(du -h dist/kedge | cut -f1) dist/kedge"
