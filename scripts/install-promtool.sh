#!/usr/bin/env bash
# Build promtool from source with the Go toolchain (no binary download) into the qaflow
# cache, so tests/observability can run `promtool check rules` offline afterwards.
#
#   scripts/install-promtool.sh                                  # PROMETHEUS_MODULE_VERSION below
#   PROMETHEUS_MODULE_VERSION=v0.316.0 scripts/install-promtool.sh
#
# Prometheus publishes its Go module as v0.<minor><patch>.x: v0.316.0 is Prometheus 3.16.0.
# Idempotent: does nothing when "$BIN_DIR/promtool" was already built for the wanted version.
set -euo pipefail

PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
CACHE_DIR="${QAFLOW_CACHE_DIR:-$HOME/.cache/qaflow}"
BIN_DIR="$CACHE_DIR/bin"
PROMTOOL="$BIN_DIR/promtool"
STAMP="$BIN_DIR/.promtool-build"

if [[ -x "$PROMTOOL" && -f "$STAMP" && "$(cat "$STAMP")" == "$PROMETHEUS_MODULE_VERSION" ]]; then
  echo "promtool $PROMETHEUS_MODULE_VERSION already at $PROMTOOL"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "go is required to build promtool (https://go.dev/dl/), or put promtool at $PROMTOOL and '$PROMETHEUS_MODULE_VERSION' in $STAMP" >&2
  exit 1
fi

mkdir -p "$BIN_DIR"
echo "building promtool (github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION) into $BIN_DIR"
# remove_all_sd leaves out the service-discovery plugins (cloud SDKs, client-go): promtool's rule
# checks and rule unit tests do not need them, and they are most of the build.
GOBIN="$BIN_DIR" CGO_ENABLED=0 go install -trimpath -tags remove_all_sd -ldflags "-s -w" \
  "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
echo "$PROMETHEUS_MODULE_VERSION" > "$STAMP"
"$PROMTOOL" --version 2>&1 | head -n 1
