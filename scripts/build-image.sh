#!/usr/bin/env bash
# Build the cloud image kedge/kedge:<version> — the image templates/50-deployment.yaml runs — from the
# executable, without any registry: a rootfs tarball (busybox, glibc and zlib from scripts/lib.sh
# bare_rootfs, the CA bundle, and the executable's unpacked one-folder build at /opt/kedge) imported
# with `docker import`, then `docker save`d for air-gapped clusters.
#
#     ./scripts/build-image.sh [IMAGE] [OUT.tar]   # defaults: kedge/kedge:<version>, dist/kedge-image.tar
#
# KEDGE_BIN names the executable (default dist/kedge, built by ./scripts/build.sh). The image's root is
# read-only-friendly: /opt/kedge is unpacked already (no unpacking at start), /var/lib/kedge, /run/kedge
# and /tmp are the volumes the Deployment mounts.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

exe="${KEDGE_BIN:-dist/kedge}"
[ -x "$exe" ] || die "$exe missing: run ./scripts/build.sh first (or set KEDGE_BIN)"
have docker || die "docker CLI missing"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/data"
version="$(KEDGE_DATA_DIR="$work/data" "$exe" version -o json | sed -n 's/.*"kedgeVersion": *"\([^"]*\)".*/\1/p')"
[ -n "$version" ] || die "$exe version printed no kedgeVersion"
image="${1:-kedge/kedge:$version}"
out="${2:-dist/kedge-image.tar}"
unpacked="$(find "$work/data" -mindepth 1 -maxdepth 1 -type d | head -n 1)"
[ -x "$unpacked/kedge" ] || die "$exe did not unpack into $work/data"

rootfs="$work/rootfs"
bare_rootfs "$rootfs"
mkdir -p "$rootfs/opt" "$rootfs/usr/local/bin" "$rootfs/etc/ssl/certs" "$rootfs/etc/kedge" \
    "$rootfs/var/lib/kedge" "$rootfs/run/kedge"
mv "$unpacked" "$rootfs/opt/kedge"
chmod 755 "$rootfs/opt/kedge"
ln -s /opt/kedge/kedge "$rootfs/usr/local/bin/kedge"
ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca" ]; then  # no system bundle: the one certifi ships inside the build
    ca="$(find "$rootfs/opt/kedge" -name cacert.pem -path '*certifi*' | head -n 1)"
fi
[ -s "$ca" ] || die "no CA bundle found (install ca-certificates)"
cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"

log "docker import $image"
tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENTRYPOINT ["/usr/local/bin/kedge"]' \
    --change 'CMD ["cloud", "run", "--config", "/etc/kedge/cloud.toml"]' \
    --change "LABEL org.opencontainers.image.version=$version" \
    - "$image" >/dev/null
mkdir -p "$(dirname "$out")"
docker save -o "$out" "$image"
log "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1 / 1e6}')), saved to $out ($(du -h "$out" | cut -f1)): docker load -i $out"
