#!/usr/bin/env bash
# `make images`: podman and friends, the wheelhouse, the stand-in bases, every image.
# Prints "step n/4" with the elapsed time before each step (build.sh prints one line per image).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
step() { echo "== make images: step $1/4 ($2), ${SECONDS}s elapsed" >&2; }
step 1 "podman"; bash "$HERE/install-podman.sh"
step 2 "wheelhouse"; bash "$HERE/wheelhouse.sh"
step 3 "stand-in bases"; bash "$HERE/bases.sh"
step 4 "images"; bash "$HERE/build.sh" "$@"
echo "== make images: done in ${SECONDS}s" >&2
