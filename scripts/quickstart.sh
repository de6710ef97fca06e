#!/usr/bin/env bash
# The main job on a fresh machine: install kedge and what it needs, then show it working.
# Re-running is fast and harmless. Each demo stage is one function below; later issues add stages
# (embedded control plane, join an edge, run a pod, a device twin) to STAGES in order.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

KEDGE=("$VENV/bin/kedge")

stage_install() {
    ensure_all
}

stage_version() {
    log "kedge version"
    "${KEDGE[@]}" version
}

stage_help() {
    log "kedge --help"
    "${KEDGE[@]}" --help
}

STAGES=(stage_install stage_version stage_help)

for stage in "${STAGES[@]}"; do
    "$stage"
done
log "quickstart done"
