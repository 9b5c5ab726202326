#!/usr/bin/env bash
# Build helm from source with the Go toolchain (no Docker, no binary download) into the
# qaflow cache, so tests/charts can use it offline afterwards.
#
#   scripts/install-helm.sh                          # HELM_VERSION below
#   HELM_VERSION=v3.21.4 scripts/install-helm.sh
#
# Idempotent: does nothing when "$BIN_DIR/helm" was already built by this script for the
# wanted version. Builds like helm's Makefile does: the version and the default Kubernetes
# version (from the client-go helm uses) go in through -ldflags; without them `helm template`
# assumes Kubernetes 1.20 and refuses charts with a kubeVersion constraint.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CACHE_DIR="${QAFLOW_CACHE_DIR:-$HOME/.cache/qaflow}"
BIN_DIR="$CACHE_DIR/bin"
HELM="$BIN_DIR/helm"
STAMP="$BIN_DIR/.helm-build"

if [[ -x "$HELM" && -f "$STAMP" && "$(cat "$STAMP")" == "$HELM_VERSION" ]] \
  && [[ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" == "$HELM_VERSION" ]]; then
  echo "helm $HELM_VERSION already at $HELM"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "go is required to build helm (https://go.dev/dl/), or put helm $HELM_VERSION at $HELM and '$HELM_VERSION' in $STAMP" >&2
  exit 1
fi

mkdir -p "$BIN_DIR"
module="helm.sh/helm/v3"
gomod="$(go mod download -json "$module@$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
client_go="$(awk '$1 == "k8s.io/client-go" { print $2 }' "$gomod")"   # e.g. v0.36.2
minor="$(echo "$client_go" | cut -d. -f2)"
if [[ -z "$minor" ]]; then
  echo "could not read the k8s.io/client-go version from $gomod" >&2
  exit 1
fi
# client-go v0.N.x belongs to Kubernetes 1.N.
ldflags="-s -w -X $module/internal/version.version=$HELM_VERSION"
for pkg in pkg/lint/rules pkg/chartutil; do
  ldflags+=" -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$minor"
done

echo "building helm $HELM_VERSION (Kubernetes 1.$minor defaults) into $BIN_DIR"
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "$module/cmd/helm@$HELM_VERSION"
echo "$HELM_VERSION" > "$STAMP"
"$HELM" version --short
