#!/usr/bin/env bash
# Shared helpers for quickstart.sh, test.sh and build.sh: make a fresh Debian 12 machine (as root)
# ready for kedge, and do nothing on a machine that already is — every step checks before acting.
#
# Source it (`. scripts/lib.sh`) or call one helper directly: `bash scripts/lib.sh ensure_busybox_image`.
# Only package registries are reachable: Debian packages via apt-get, Python packages via pip.
# Nothing here ever pulls an image: the test image is built locally with `docker import`.

set -euo pipefail

KEDGE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KEDGE_VENV:-$KEDGE_REPO/.venv}"
BUSYBOX_IMAGE="kedge.local/busybox:1"
DOCKERD_LOG="${KEDGE_DOCKERD_LOG:-/var/log/kedge-dockerd.log}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

_apt_updated=""
apt_install() {  # apt_install PKG... — `apt-get update` only once, and only when something is missing
    [ "$(id -u)" = 0 ] || die "need root to install Debian packages: $*"
    have apt-get || die "not a Debian machine (no apt-get); install by hand: $*"
    export DEBIAN_FRONTEND=noninteractive
    if [ -z "$_apt_updated" ]; then
        log "apt-get update"
        apt-get update -qq >/dev/null
        _apt_updated=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_debs() {  # system tools the tests and the demo use (design.md §8)
    local missing=()
    have dockerd || missing+=(docker.io cgroupfs-mount)  # recommends are off: name what dockerd needs
    have mosquitto || missing+=(mosquitto)
    have mosquitto_pub || missing+=(mosquitto-clients)
    deb_installed busybox-static || missing+=(busybox-static)  # a dynamic busybox can't be a rootfs
    have ip || missing+=(iproute2)
    have nft || missing+=(nftables)
    have kubectl || missing+=(kubernetes-client)  # Debian's kubectl 1.20; only when none is present
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}

python_for_venv() {  # the interpreter that builds .venv: $PYTHON, else python3 (pyenv or Debian)
    local py="${PYTHON:-python3}"
    have "$py" || apt_install python3
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$py is $("$py" -V 2>&1); kedge needs Python >= 3.11 (set PYTHON=...)"
    # Debian's own python3 ships venv without ensurepip until python3-venv is installed.
    if ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    echo "$py"
}

ensure_venv() {  # .venv with `pip install -e .[test]`, redone only when pyproject.toml changed
    local extras="${1:-test}" stamp sum
    if [ ! -x "$VENV/bin/python" ]; then
        local py
        py="$(python_for_venv)"
        log "creating $VENV with $($py -V 2>&1)"
        "$py" -m venv "$VENV"
    fi
    stamp="$VENV/.kedge-installed-$extras"
    sum="$(sha256sum "$KEDGE_REPO/pyproject.toml" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
        log "pip install -e '.[$extras]' (pyproject.toml changed or first run)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$KEDGE_REPO[$extras]"
        echo "$sum" >"$stamp"
    fi
}

ensure_cgroups() {  # containers need cgroup hierarchies; a bare VM may boot without them mounted
    if awk '$3 == "cgroup" || $3 == "cgroup2" {found = 1} END {exit !found}' /proc/mounts; then
        return 0
    fi
    log "mounting cgroups"
    if have cgroupfs-mount; then
        cgroupfs-mount
    else
        mount -t cgroup2 none /sys/fs/cgroup
    fi
}

ensure_docker() {  # a running engine; start dockerd in the background when none answers
    have docker || die "docker CLI missing (ensure_debs installs docker.io)"
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    have dockerd || die "dockerd missing (ensure_debs installs docker.io)"
    [ "$(id -u)" = 0 ] || die "the Docker engine is not running and starting it needs root"
    ensure_cgroups
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    log "starting dockerd (log: $DOCKERD_LOG)"
    local dockerd_bin
    dockerd_bin="$(command -v dockerd || echo /usr/sbin/dockerd)"
    # KEDGE_DOCKERD_ARGS: extra flags, e.g. a second engine on its own socket (with DOCKER_HOST).
    # Never --bridge=none beside a running engine: dockerd then deletes the shared docker0 link.
    # shellcheck disable=SC2086
    setsid "$dockerd_bin" ${KEDGE_DOCKERD_ARGS:-} >>"$DOCKERD_LOG" 2>&1 </dev/null &
    local pid=$! i
    for i in $(seq 1 120); do
        if docker info >/dev/null 2>&1; then
            log "dockerd ready after $((i / 2)) s"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "dockerd exited during start-up (log above: $DOCKERD_LOG)"
        fi
        sleep 0.5
    done
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not answer within 60 s (log above: $DOCKERD_LOG)"
}

busybox_bin() {  # the static busybox from busybox-static (Debian installs it as /bin/busybox)
    local b
    for b in /bin/busybox /usr/bin/busybox; do
        if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then
            echo "$b"
            return 0
        fi
    done
    die "no static busybox found (install busybox-static)"
}

busybox_rootfs() {  # busybox_rootfs DIR: a static busybox, its applets, root and nobody
    local bb rootfs="$1" applet
    bb="$(busybox_bin)"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var/run}
    chmod 1777 "$rootfs/tmp"
    cp "$bb" "$rootfs/bin/busybox"
    "$bb" --list-full | while read -r applet; do  # e.g. bin/sh, usr/bin/awk, sbin/ip
        [ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
}

bare_rootfs() {  # bare_rootfs DIR: busybox_rootfs plus glibc (libc6) and zlib (zlib1g) — nothing else
    local rootfs="$1" d f
    busybox_rootfs "$rootfs"
    for d in lib lib64; do  # a merged-/usr host lists /lib/... paths that live in /usr/lib/...
        if [ -L "/$d" ]; then
            mkdir -p "$rootfs/$(readlink "/$d")"
            ln -sfn "$(readlink "/$d")" "$rootfs/$d"
        fi
    done
    dpkg -L libc6 zlib1g | while read -r f; do
        case "$f" in /usr/share/*) continue ;; esac
        if [ -f "$f" ] && [ ! -d "$f" ]; then
            mkdir -p "$rootfs$(dirname "$f")"
            cp -a "$f" "$rootfs$f"
        fi
    done
}

ensure_busybox_image() {  # kedge.local/busybox:1 from a local rootfs — no registry is reachable
    if docker image inspect "$BUSYBOX_IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    local rootfs
    rootfs="$(mktemp -d)"
    busybox_rootfs "$rootfs"
    log "docker import $BUSYBOX_IMAGE ($("$(busybox_bin)" --list | wc -l) applets)"
    tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/sh"]' - "$BUSYBOX_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

ensure_all() {  # everything the suite and the demo need, in dependency order
    ensure_debs
    ensure_venv test
    ensure_docker
    ensure_busybox_image
}

# `bash scripts/lib.sh <helper> [args]` runs one helper (the pytest fixtures use this).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    [ $# -ge 1 ] || die "usage: $0 {ensure_all|ensure_debs|ensure_venv|ensure_docker|ensure_busybox_image|bare_rootfs DIR}"
    "$@"
fi
