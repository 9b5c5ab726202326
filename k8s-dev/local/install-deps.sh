#!/usr/bin/env bash
# Installs what the local servers (src/qaflow/devstack) need: PostgreSQL and Redis from
# Debian's packages, a Java runtime and Maven, chromium for the browser test, and the Kafka broker jars from Maven Central.
# Idempotent and quick when everything is present; safe under CI=true with no stdin.
#
#   bash k8s-dev/local/install-deps.sh
#
# Environment: QAFLOW_KAFKA_VERSION (default 4.3.1), QAFLOW_CACHE_DIR (default
# ~/.cache/qaflow). The jars land in $QAFLOW_CACHE_DIR/kafka-<version>/libs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kafka_version="${QAFLOW_KAFKA_VERSION:-4.3.1}"
cache_dir="${QAFLOW_CACHE_DIR:-$HOME/.cache/qaflow}"
libs_dir="$cache_dir/kafka-$kafka_version/libs"

say() { printf 'install-deps: %s\n' "$*"; }

postgres_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -x "$d/postgres" && -x "$d/initdb" ]]; then echo "$d"; return 0; fi
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x "$d/postgres" && -x "$d/initdb" ]]; then echo "$d"; return 0; fi
  done
  return 1
}

apt_install() {
  local sudo=()
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { say "need root (or sudo) to install: $*"; exit 1; }
    sudo=(sudo -n)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when installing from the current ones fails.
  if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" </dev/null; then
    say "apt-get install failed; running apt-get update and retrying"
    "${sudo[@]}" apt-get update -q </dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" </dev/null
  fi
}

missing=()
if d="$(postgres_bindir)"; then say "postgresql: present ($d), skipped"; else missing+=(postgresql); fi
if command -v redis-server >/dev/null 2>&1; then
  say "redis-server: present ($(command -v redis-server)), skipped"
else
  missing+=(redis-server)
fi
if command -v java >/dev/null 2>&1; then say "java: present, skipped"; else missing+=(default-jre-headless); fi
if command -v mvn >/dev/null 2>&1; then say "maven: present, skipped"; else missing+=(maven); fi
# Debian's chromium, driven headless by Playwright in tests/observability (never `playwright install`).
if [[ -x /usr/bin/chromium ]]; then say "chromium: present, skipped"; else missing+=(chromium); fi
# shellcheck lints the project's shell scripts (tests/charts/test_dev_tooling.py).
if command -v shellcheck >/dev/null 2>&1; then say "shellcheck: present, skipped"; else missing+=(shellcheck); fi

if ((${#missing[@]})); then
  say "installing ${missing[*]} with apt-get"
  apt_install "${missing[@]}"
  say "installed ${missing[*]}"
fi

if [[ -f "$libs_dir/.complete" && -f "$libs_dir/kafka_2.13-$kafka_version.jar" ]]; then
  say "kafka $kafka_version jars: present ($libs_dir), skipped"
else
  say "kafka $kafka_version jars: fetching from Maven Central into $libs_dir"
  mkdir -p "$cache_dir"
  tmp="$(mktemp -d "$cache_dir/.tmp.XXXXXX")"  # same file system: the final mv is atomic
  trap 'rm -rf "$tmp"' EXIT
  mvn -q -B -Dstyle.color=never -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -Dkafka.version="$kafka_version" -DincludeScope=runtime -DoutputDirectory="$tmp/libs" </dev/null
  touch "$tmp/libs/.complete"
  mkdir -p "$(dirname "$libs_dir")"
  rm -rf "$libs_dir"
  mv "$tmp/libs" "$libs_dir"
  say "kafka $kafka_version jars: fetched ($(ls "$libs_dir" | wc -l) jars)"
fi
