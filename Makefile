# qaflow — every command the README and CI use. `make` alone lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(PYTHON) -m uv
CACHE_DIR ?= $(HOME)/.cache/qaflow
export QAFLOW_CACHE_DIR := $(CACHE_DIR)
export UV_CACHE_DIR ?= $(CACHE_DIR)/uv
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.created:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	@touch $@

# torch: uv's --torch-backend=auto picks the build for this machine from download.pytorch.org
# (the CPU build, ~200 MB, where there is no GPU, instead of ~5 GB of CUDA wheels). Where that
# index cannot be reached within TORCH_INDEX_TIMEOUT seconds, PyPI's default build is installed
# instead. TORCH_BACKEND=cpu, cu128, ... forces one; TORCH_BACKEND= (empty) always uses PyPI's.
# The failed attempt's output is kept aside: one line says why, and all of it is shown when the
# PyPI install fails too, or with TORCH_VERBOSE=1. The exit code is the last install's.
TORCH_BACKEND ?= auto
TORCH_INDEX_TIMEOUT ?= 20
TORCH_VERBOSE ?=
# --compile-bytecode: the .pyc files are written at install, so importing torch and transformers
# does not compile them from source on every run where Python may not write them
# (PYTHONDONTWRITEBYTECODE=1, as on this machine and in containers; the first run everywhere
# else): 2-3x the import time of the scorer (docs/performance.md, "Time to first score").
UV_PIP_INSTALL := $(UV) pip install --quiet --compile-bytecode --python $(PY)
define uv_install_with_torch
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	if [ -n "$(TORCH_BACKEND)" ] && UV_HTTP_TIMEOUT=$(TORCH_INDEX_TIMEOUT) UV_HTTP_RETRIES=0 \
	    $(UV_PIP_INSTALL) --torch-backend=$(TORCH_BACKEND) $(1) >"$$log" 2>&1; then \
	  cat "$$log"; \
	  echo "torch: installed with uv --torch-backend=$(TORCH_BACKEND)"; \
	else \
	  if [ -n "$(TORCH_BACKEND)" ]; then \
	    why=$$(grep -m1 '^error:' "$$log" | cut -c8-200 || true); \
	    echo "torch: --torch-backend=$(TORCH_BACKEND) failed ($${why:-index unreachable?}); using PyPI's torch build"; \
	    [ -z "$(TORCH_VERBOSE)" ] || cat "$$log"; \
	  fi; \
	  $(UV_PIP_INSTALL) $(1) || { status=$$?; \
	    if [ -s "$$log" ] && [ -z "$(TORCH_VERBOSE)" ]; then \
	      echo "torch: the --torch-backend=$(TORCH_BACKEND) attempt before it said:" >&2; cat "$$log" >&2; fi; \
	    exit $$status; }; \
	fi
endef

$(VENV)/.run: pyproject.toml $(VENV)/.created
	$(call uv_install_with_torch,-e '.[run]')
	@touch $@

DEV_EXTRAS := -e '.[dev,flink]'
$(VENV)/.dev: pyproject.toml $(VENV)/.created
	$(call uv_install_with_torch,$(DEV_EXTRAS))
	@touch $@ $(VENV)/.run

.PHONY: install
install: $(VENV)/.run ## Install what the embedded run needs (real BERTScore on MiniLM included)

.PHONY: run
run: $(VENV)/.run ## Run the whole job on the shipped sample, in one process, with no servers
	$(VENV)/bin/qaflow run --dataset data/sample.csv --report reports/sample.html

.PHONY: deps
deps: $(VENV)/.dev ## Install everything the tests need: Python extras, Kafka jars, PostgreSQL, Redis, chromium, helm, promtool, Flink jars
	bash k8s-dev/local/install-deps.sh
	bash scripts/install-helm.sh
	bash scripts/install-promtool.sh
	$(VENV)/bin/qaflow flink fetch-jars

export CONTAINERS_CONF ?= $(CURDIR)/scripts/images/containers.conf

.PHONY: images
images: ## Build every image under images/ with podman (stand-in bases, wheelhouse; cached in CACHE_DIR)
	bash scripts/images/all.sh

.PHONY: test
test: deps lint images ## Set up everything, lint, build the images, and run every test suite against real servers
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: chaos
chaos: deps ## Only the chaos suite (faults on the whole stack), then its table into docs/reliability.md
	status=0; $(PY) -m pytest tests/chaos -m chaos $(PYTEST_ARGS) || status=$$?; \
	$(PY) scripts/chaos_report.py reports/chaos.json docs/reliability.md; exit $$status

BENCH_ARGS ?=
.PHONY: bench
bench: deps ## Every benchmark side by side (~15 min), JSON + table in bench/results/, table into docs/performance.md
	status=0; $(PY) bench/suite.py $(BENCH_ARGS) || status=$$?; \
	$(PY) scripts/bench_report.py bench/results/latest.md docs/performance.md; exit $$status

.PHONY: bench-quick
bench-quick: deps ## make bench on tiny sizes, into reports/bench-quick/ (a smoke test of the harness)
	$(PY) bench/suite.py --quick $(BENCH_ARGS)

.PHONY: test-unit
test-unit: $(VENV)/.dev ## Only the fast tests of the core (no servers)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: lint
lint: $(VENV)/.dev ## ruff and mypy
	$(VENV)/bin/ruff check src tests bench flink
	$(VENV)/bin/mypy

.PHONY: dev-up
dev-up: deps ## Start local Kafka, PostgreSQL and Redis for development (qaflow dev up)
	$(VENV)/bin/qaflow dev up

.PHONY: dev-down
dev-down: ## Stop them
	$(VENV)/bin/qaflow dev down

.PHONY: clean
clean: ## Remove the virtual environment and local state (downloads stay cached)
	rm -rf $(VENV) .devstack qaflow.db qaflow.db-* reports .pytest_cache
