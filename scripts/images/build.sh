#!/usr/bin/env bash
# Build every image under images/ with podman (buildah) from the real Dockerfiles, swapping
# only build arguments (docs/kubernetes.md, "Test builds"):
#   PYTHON_IMAGE / FLINK_IMAGE        the stand-in bases (bases.sh)
#   PIP_NO_INDEX=1, PIP_FIND_LINKS    the wheelhouse (wheelhouse.sh), mounted at /wheels
#   TORCH_INDEX_URL                   PyPI's index when the CPU index is unreachable
#   BUILD_PACKAGES, RUNTIME_PACKAGES  empty: the Flink stand-in already has python3 (no apt)
# Each Dockerfile's <name>.dockerignore is passed as --ignorefile (BuildKit reads it itself).
# Tags: localhost/qaflow/<image>:$QAFLOW_IMAGE_TAG (default "local"), what
# charts/qaflow/ci/containers-values.yaml names. Timings go to $QAFLOW_CACHE_DIR/images/build-times.tsv.
#
#   scripts/images/build.sh              every image
#   scripts/images/build.sh api scorer   some
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$HERE/lib.sh"
TAG="${QAFLOW_IMAGE_TAG:-local}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
PYTHON_TARGETS=(api llm-worker retry-worker storage-writer scorer traffic-gen dashboard)
TIMES="$CACHE_DIR/images/build-times.tsv"
mkdir -p "$(dirname "$TIMES")"

if ! torch_index_answers; then
  TORCH_INDEX_URL=https://pypi.org/simple   # the wheelhouse holds PyPI's torch then
fi
common=(--pull=never --layers --volume "$WHEELHOUSE:/wheels:ro"
        --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels)

build() {  # build IMAGE ARGS...
  local image="$1"; shift
  local start end
  start="$(date +%s.%N)"
  local log="$CACHE_DIR/images/build-$image.log" status=0
  podman build "${common[@]}" "$@" -t "localhost/qaflow/$image:$TAG" "$REPO" >"$log" 2>&1 || status=$?
  if ((status)) && grep -q "no space left on device" "$log"; then
    # A cold scorer build (PyPI's CUDA torch) peaks near 18 GB above what it keeps (its 6.6 GB
    # deps layer is written three times over while committed; docs/kubernetes.md), and old
    # images are what fill the disk: untagged ones, and the previous build of this very image,
    # which the new one replaces anyway. Drop them (their layer cache goes too) and try once more.
    echo "build of $image ran out of disk; removing untagged images and the previous $image:$TAG, then trying again" >&2
    podman rmi -f "localhost/qaflow/$image:$TAG" >/dev/null 2>&1 || true
    podman image prune -f >/dev/null
    status=0
    podman build "${common[@]}" "$@" -t "localhost/qaflow/$image:$TAG" "$REPO" >"$log" 2>&1 || status=$?
  fi
  if ((status)); then
    tail -40 "$CACHE_DIR/images/build-$image.log" >&2
    echo "build of $image failed (log: $CACHE_DIR/images/build-$image.log)" >&2
    exit 1
  fi
  end="$(date +%s.%N)"
  printf '%s\t%s\t%.1f\n' "$(date -u +%FT%TZ)" "$image" "$(awk "BEGIN {print $end - $start}")" | tee -a "$TIMES"
}

targets=("$@")
((${#targets[@]})) || targets=("${PYTHON_TARGETS[@]}" score-job)
n=0
for t in "${targets[@]}"; do
  n=$((n + 1))
  echo "-- image $n/${#targets[@]}: $t (build log: $CACHE_DIR/images/build-$t.log), ${SECONDS}s elapsed" >&2
  if [[ "$t" == score-job ]]; then
    build score-job -f "$REPO/images/score-job/Dockerfile" --ignorefile "$REPO/images/score-job/Dockerfile.dockerignore" \
      --build-arg FLINK_IMAGE=localhost/qaflow-stand-in/flink:2.2.1 \
      --build-arg BUILD_PACKAGES= --build-arg RUNTIME_PACKAGES=
  else
    build "$t" -f "$REPO/images/python/Dockerfile" --ignorefile "$REPO/images/python/Dockerfile.dockerignore" \
      --target "$t" --build-arg PYTHON_IMAGE=localhost/qaflow-stand-in/python:3.11 \
      --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL"
  fi
done
