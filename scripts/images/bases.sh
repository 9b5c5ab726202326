#!/usr/bin/env bash
# Stand-ins for the two upstream base images, made from Debian packages (there is no
# container registry on CI or the developers' test machines):
#
#   localhost/qaflow-stand-in/python:3.11   for python:3.11.14-slim-trixie (images/python)
#       Debian bookworm minbase + python3 (3.11), python3-venv, python-is-python3: `python`
#       on PATH, `python -m venv` with pip, groupadd/useradd, as in the official image.
#   localhost/qaflow-stand-in/flink:2.2.1   for flink:2.2.1-scala_2.12-java17 (images/score-job)
#       bookworm + openjdk-17-jre-headless + python3, and the Flink 2.2.1 distribution that
#       the apache-flink wheels carry (pyflink/{bin,conf,lib,opt,plugins}) at /opt/flink,
#       the flink user (9999:9999) and an entry point that behaves like the official one
#       (flink-base/docker-entrypoint.sh).
#
# Each root filesystem is cached as a tar under $QAFLOW_CACHE_DIR/images, keyed by its package
# list, so debootstrap (about a minute each) runs once per machine; the import runs only when
# podman's store lacks the image. Needs root, podman and debootstrap (install-podman.sh) and the
# wheelhouse (wheelhouse.sh) for the Flink tree.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${QAFLOW_CACHE_DIR:-$HOME/.cache/qaflow}"
IMG_CACHE="$CACHE_DIR/images"
WHEELHOUSE="${QAFLOW_WHEELHOUSE:-$CACHE_DIR/wheelhouse}"
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
PATH_ENV='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
mkdir -p "$IMG_CACHE"

# rootfs_tar NAME PACKAGES -> prints the path of the cached tar, making it when missing.
rootfs_tar() {
  local name="$1" packages="$2"
  local key; key="$(printf '%s %s %s' "$SUITE" "$packages" "$(sha256sum "$HERE/bases.sh" | cut -c1-12)" | sha256sum | cut -c1-16)"
  local tar="$IMG_CACHE/$name-$SUITE-$key.tar"
  if [[ ! -s "$tar" ]]; then
    local root; root="$(mktemp -d "$IMG_CACHE/rootfs-$name.XXXX")"
    echo "debootstrap $name ($packages)" >&2
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
      || { tail -20 "$root.log" >&2; rm -rf "$root"; exit 1; }
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*
    tar -C "$root" -cf "$tar.part" . && mv "$tar.part" "$tar"
    rm -rf "$root" "$root.log"
  fi
  echo "$tar"
}

import_base() {   # import_base IMAGE TAR CHANGE...
  local image="$1" tar="$2"; shift 2
  if podman image exists "$image" && [[ "$(podman image inspect --format '{{index .Labels "qaflow.rootfs"}}' "$image" 2>/dev/null)" == "$(basename "$tar")" ]]; then
    return
  fi
  local changes=(--change "ENV $PATH_ENV" --change "LABEL qaflow.rootfs=$(basename "$tar")")
  for c in "$@"; do changes+=(--change "$c"); done
  podman import "${changes[@]}" "$tar" "$image" >/dev/null
  echo "imported $image" >&2
}

PY_IMAGE=localhost/qaflow-stand-in/python:3.11
JAVA_IMAGE=localhost/qaflow-stand-in/debian-java:17
FLINK_IMAGE=localhost/qaflow-stand-in/flink:2.2.1

import_base "$PY_IMAGE" "$(rootfs_tar python python3,python3-venv,python-is-python3,ca-certificates)" \
  'ENV LANG=C.UTF-8' 'CMD ["python3"]'
import_base "$JAVA_IMAGE" "$(rootfs_tar java python3,python3-venv,openjdk-17-jre-headless,ca-certificates,procps)" \
  'ENV LANG=C.UTF-8' 'ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64'

# The Flink stand-in: the distribution from the apache-flink wheels, on the Java base.
java_rootfs="$(podman image inspect --format '{{index .Labels "qaflow.rootfs"}}' "$JAVA_IMAGE")"
flink_key="$( (cat "$HERE/flink-base/Containerfile" "$HERE/flink-base/docker-entrypoint.sh"; echo "$java_rootfs"; ls "$WHEELHOUSE" | grep apache_flink) | sha256sum | cut -c1-12)"
if ! podman image exists "$FLINK_IMAGE" \
   || [[ "$(podman image inspect --format '{{index .Labels "qaflow.key"}}' "$FLINK_IMAGE")" != "$flink_key" ]]; then
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  for whl in "$WHEELHOUSE"/apache_flink_libraries-2.2.1-*.whl "$WHEELHOUSE"/apache_flink-2.2.1-*.whl; do
    [[ -f "$whl" ]] || { echo "no $whl: run scripts/images/wheelhouse.sh first" >&2; exit 1; }
    python3 - "$whl" "$ctx/flink" <<'PY'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
keep = ("pyflink/bin/", "pyflink/conf/", "pyflink/lib/", "pyflink/opt/", "pyflink/plugins/", "pyflink/licenses/")
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        if not info.filename.startswith(keep) or info.is_dir():
            continue
        target = os.path.join(dest, info.filename[len("pyflink/"):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as out:
            out.write(src.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(target, mode or (0o755 if info.filename.startswith("pyflink/bin/") else 0o644))
PY
  done
  mkdir -p "$ctx/flink/log" "$ctx/flink/usrlib"
  cp "$HERE/flink-base/docker-entrypoint.sh" "$ctx/"
  podman build --quiet --pull=never --label "qaflow.key=$flink_key" \
    --build-arg "BASE_IMAGE=$JAVA_IMAGE" -f "$HERE/flink-base/Containerfile" -t "$FLINK_IMAGE" "$ctx" >/dev/null
  echo "built $FLINK_IMAGE" >&2
fi
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep qaflow-stand-in
