#!/bin/sh
# kedge — the one-file executable (design.md §1, issue 14). scripts/build.sh writes this header and
# appends the one-folder build (dist/kedge-onedir) as a gzipped tar. Like k3s, the first call of a
# version unpacks it once to <data>/<content hash>/ (a temporary folder renamed into place, so a
# half-written version is never run) and every call execs the unpacked `kedge` — no per-call unpacking,
# and the pid is kedge's own (exec keeps it).
#
# <data> is $KEDGE_DATA_DIR, else <root>/var/lib/kedge/data (<root> from --root, default /), else —
# when that cannot be created (a read-only rootfs, not root) — ${TMPDIR:-/tmp}/kedge-<uid>/data. It
# must be a 0700 folder owned by the caller: a version there is exec'd without another look. After
# unpacking a new version, all but it and the one before it are removed.
# Needs only sh, tail, gzip, tar, touch, mv, rm, ls, find, stat, id (busybox has them all).
set -eu
KEDGE_HASH=@HASH@
KEDGE_OFFSET=@OFFSET@

die() {
    echo "kedge: $*" >&2
    exit 70
}

case $0 in
/*) self=$0 ;;
*) self=$PWD/$0 ;;
esac

data=${KEDGE_DATA_DIR:-}
if [ -z "$data" ]; then
    root=/ next=
    for a in "$@"; do
        if [ -n "$next" ]; then
            root=$a next=
        elif [ "$a" = --root ]; then
            next=1
        else
            case $a in --root=*) root=${a#--root=} ;; esac
        fi
    done
    data=${root%/}/var/lib/kedge/data
    (umask 077 && mkdir -p "$data") 2>/dev/null || data=${TMPDIR:-/tmp}/kedge-$(id -u)/data
fi

dir=$data/$KEDGE_HASH
if [ ! -x "$dir/kedge" ]; then
    (umask 077 && mkdir -p "$data") || die "cannot create $data (set KEDGE_DATA_DIR)"
fi
# Owned by us and closed to everyone else, or we do not run what is inside.
[ -O "$data" ] || die "$data is not owned by uid $(id -u); refusing to run from it"
case $(stat -c %a "$data") in
700) ;;
*) die "$data has mode $(stat -c %a "$data"), want 700 (chmod 700 $data)" ;;
esac

if [ ! -x "$dir/kedge" ]; then
    tmp=$data/.unpack-$$
    rm -rf "$tmp"
    mkdir "$tmp"
    if ! tail -c +"$KEDGE_OFFSET" "$self" | gzip -dc | tar -xf - -C "$tmp"; then
        rm -rf "$tmp"
        die "cannot unpack $self into $data"
    fi
    touch "$tmp" # the archive's "." carries no time: the folder's mtime is its unpack time (ls -t below)
    # Atomic: another kedge that unpacked the same version first wins, ours is dropped.
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
    [ -x "$dir/kedge" ] || die "unpacking into $dir failed"
    # shellcheck disable=SC2012 - the names are our own hex hashes
    ls -1dt "$data"/*/ 2>/dev/null | tail -n +3 | while read -r old; do
        [ "${old%/}" = "$dir" ] || rm -rf "${old%/}"
    done
    # unpacks cut short (killed) long ago; a running one is minutes old at most
    find "$data" -maxdepth 1 -name '.unpack-*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
fi

KEDGE_EXE=$self
export KEDGE_EXE
exec "$dir/kedge" "$@"
