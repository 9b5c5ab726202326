#!/usr/bin/env bash
# Install podman, buildah, runc and debootstrap from Debian (idempotent; apt-get only when one
# is missing). Needs root, as on CI and the developers' machines.
set -euo pipefail
missing=()
for tool in podman buildah runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman buildah runc debootstrap uidmap >/dev/null
fi
podman --version
