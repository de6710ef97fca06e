#!/usr/bin/env bash
# Build the executable: pyinstaller build.spec -> the one-folder build dist/kedge-onedir/, packed with
# scripts/launcher.sh into the one-file dist/kedge (unpacked once per version on first use, then exec'd),
# and prove that both run (`--pack-only`: skip PyInstaller, re-pack dist/kedge-onedir). About a minute
# on 2 cores; CI runs it from test.sh (CI=true), and the subprocess tests run against it with
# KEDGE_BIN=dist/kedge.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

if [ "${1:-}" = --pack-only ]; then  # re-pack the existing one-folder build (after a launcher.sh edit)
    [ -x dist/kedge-onedir/kedge ] || die "no dist/kedge-onedir to pack: run ./scripts/build.sh"
else
    have objdump || apt_install binutils  # PyInstaller reads the shared libraries' needs with it
    ensure_venv build  # pyinstaller (the `build` extra) beside the runtime dependencies
    log "pyinstaller build.spec"
    "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN build.spec
fi

log "packing dist/kedge-onedir into dist/kedge"
payload="$(mktemp)"
trap 'rm -f "$payload"' EXIT
# Reproducible archive (sorted names, no owners or times), so its hash names the content.
tar -C dist/kedge-onedir --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -c . | gzip -6n >"$payload"
hash="$(sha256sum "$payload" | cut -c1-20)"
header="$(sed "s/@HASH@/$hash/" scripts/launcher.sh)"$'\n'
placeholder="@OFFSET@"
width=12  # the offset is written space-padded to this width, so the header's length does not change
header="${header/"$placeholder"/$(printf "%-${width}s" 0)}"
offset=$(($(printf '%s' "$header" | wc -c) + 1))
header="${header/$(printf "%-${width}s" 0)/$(printf "%-${width}s" "$offset")}"
{ printf '%s' "$header"; cat "$payload"; } >dist/kedge.tmp
chmod 755 dist/kedge.tmp
mv -f dist/kedge.tmp dist/kedge

data="$(mktemp -d)"
trap 'rm -f "$payload"; rm -rf "$data"' EXIT
chmod 700 "$data"
log "dist/kedge version -o json (first call: unpacks into a temporary KEDGE_DATA_DIR)"
start=$(date +%s%N)
KEDGE_DATA_DIR="$data" dist/kedge version -o json
first=$((($(date +%s%N) - start) / 1000000))
start=$(date +%s%N)
KEDGE_DATA_DIR="$data" dist/kedge --help >/dev/null
second=$((($(date +%s%N) - start) / 1000000))
[ -x "$data/$hash/kedge" ] || die "dist/kedge did not unpack into $data/$hash"
log "built dist/kedge ($(du -h dist/kedge | cut -f1), unpacked $(du -sh "$data/$hash" | cut -f1), version $hash): first call ${first} ms, next ${second} ms"
