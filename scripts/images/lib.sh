# Sourced by build.sh and wheelhouse.sh, not run: where the checkout, the cache and the
# wheelhouse are, which torch index to use, and whether it answers. The caller sets HERE (this
# folder) first. Part of the wheelhouse's cache key (wheelhouse.sh), as TORCH_INDEX_URL picks
# which torch wheels it holds.
# shellcheck shell=bash disable=SC2034
REPO="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${QAFLOW_CACHE_DIR:-$HOME/.cache/qaflow}"
WHEELHOUSE="${QAFLOW_WHEELHOUSE:-$CACHE_DIR/wheelhouse}"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"

# torch_index_answers: true when TORCH_INDEX_URL serves torch (CPU wheels); builds inside
# containers and some networks cannot reach it, and then PyPI's default torch is used.
torch_index_answers() {
  curl -fsS --max-time 15 -o /dev/null "$TORCH_INDEX_URL/torch/" 2>/dev/null
}
