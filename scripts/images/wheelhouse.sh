#!/usr/bin/env bash
# The wheelhouse the test builds of the images install from (`pip --no-index --find-links`):
# every wheel images/python and images/score-job need, made on the host. Builds inside
# containers cannot reach the registries over TLS here (the machine's CA is not in Debian's
# stock bundle), and a wheelhouse keeps them hermetic and fast.
#
# Python 3.11 on the host, like the stand-in bases (Debian bookworm). sdists (crcmod, from
# apache-beam) are built into wheels here, so the images need no compilers. torch comes from
# TORCH_INDEX_URL (CPU wheels) when that index answers, else from PyPI's default index
# (CUDA wheels; bigger, same behaviour on CPU). Cached in $QAFLOW_CACHE_DIR/wheelhouse, keyed
# by pyproject.toml, this script and lib.sh (its paths and torch index).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$HERE/lib.sh"
PYTHON="${PYTHON:-python3}"
STAMP="$WHEELHOUSE/.qaflow-stamp"
key="$(cat "$REPO/pyproject.toml" "$HERE/wheelhouse.sh" "$HERE/lib.sh" | sha256sum | cut -c1-16)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$key" ]]; then
  echo "wheelhouse up to date: $WHEELHOUSE ($(du -sh "$WHEELHOUSE" | cut -f1))"
  exit 0
fi
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"the wheelhouse needs Python 3.11 (the bases), not {sys.version}"'
mkdir -p "$WHEELHOUSE"
pipw=("$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$WHEELHOUSE")
if torch_index_answers; then
  echo "torch: CPU wheels from $TORCH_INDEX_URL"
  "${pipw[@]}" --no-deps --index-url "$TORCH_INDEX_URL" torch
else
  echo "torch: $TORCH_INDEX_URL unreachable; PyPI's default torch (with its CUDA libraries)"
fi
cd "$REPO"
# async-timeout: redis needs it on Python < 3.11.3 (bookworm has 3.11.2; the host may be newer).
"${pipw[@]}" pip "setuptools>=69" wheel "async-timeout>=4.0.3" ".[services,flink]" "apache-flink==2.2.1"
"${pipw[@]}" --find-links "$WHEELHOUSE" ".[bertscore,services]"
rm -f "$WHEELHOUSE"/qaflow-*.whl   # the images install qaflow from their own build context
echo "$key" >"$STAMP"
echo "wheelhouse: $WHEELHOUSE ($(find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1))"
