#!/usr/bin/env bash
# Build helm from source with the Go toolchain (no Docker, no binary download) into the
# qaflow cache, so `tests/charts` and `make charts` can use it offline afterwards.
#
#   scripts/install-helm.sh            # installs HELM_VERSION (below) unless already there
#   HELM_VERSION=v3.21.4 scripts/install-helm.sh
#
# Idempotent: does nothing when "$BIN_DIR/helm" already reports the wanted version.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE_DIR="${QAFLOW_CACHE_DIR:-$HOME/.cache/qaflow}"
BIN_DIR="$CACHE_DIR/bin"
HELM="$BIN_DIR/helm"

if [[ -x "$HELM" ]] && "$HELM" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "helm $HELM_VERSION already at $HELM"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "go is required to build helm (https://go.dev/dl/); or put a helm $HELM_VERSION binary at $HELM" >&2
  exit 1
fi

mkdir -p "$BIN_DIR"
# helm prints its version from these link-time variables; without them it reports "v3.x-dev"-ish values.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
echo "building helm $HELM_VERSION into $BIN_DIR (go install, a few minutes on 2 cores)"
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$HELM" version --short
