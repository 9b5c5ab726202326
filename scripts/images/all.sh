#!/usr/bin/env bash
# `make images`: podman and friends, the wheelhouse, the stand-in bases, every image.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
bash "$HERE/install-podman.sh"
bash "$HERE/wheelhouse.sh"
bash "$HERE/bases.sh"
bash "$HERE/build.sh" "$@"
