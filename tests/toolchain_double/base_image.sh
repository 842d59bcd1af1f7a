#!/usr/bin/env bash
# (Re)creates the base image of the toolchain double, trtbuild-test/debian-python:bookworm, with no image
# pulls: debootstrap (Debian minbase + python3) → tarball → docker import. The tarball is cached in
# $TRTBUILD_TEST_CACHE (default /var/cache/trtbuild-test/rootfs.tar) and reused on the next run.
#   tests/toolchain_double/base_image.sh [--force]   # --force: re-run debootstrap even if cached
# Needs root, debootstrap and a reachable Debian mirror ($DEBIAN_MIRROR, default deb.debian.org).
set -euo pipefail
IMAGE="${TRTBUILD_TEST_BASE_IMAGE:-trtbuild-test/debian-python:bookworm}"
CACHE="${TRTBUILD_TEST_CACHE:-/var/cache/trtbuild-test}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TAR="$CACHE/rootfs.tar"

if [ "${1:-}" != "--force" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE already present" >&2
    exit 0
fi
mkdir -p "$CACHE"
if [ "${1:-}" = "--force" ] || [ ! -s "$TAR" ]; then
    command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install -y debootstrap)" >&2; exit 1; }
    ROOTFS="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$ROOTFS"' EXIT
    echo "debootstrap bookworm into $ROOTFS (about a minute)" >&2
    debootstrap --variant=minbase --include=python3-minimal,python3 bookworm "$ROOTFS" "$MIRROR" \
        > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    tar -C "$ROOTFS" -cf "$TAR.tmp" .
    mv "$TAR.tmp" "$TAR"
fi
echo "importing $TAR as $IMAGE" >&2
docker import "$TAR" "$IMAGE" >&2
