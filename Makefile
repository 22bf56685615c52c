# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first (idempotent).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export TWIN_TEST_MODELS_DIR ?= $(CURDIR)/.cache/models
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export RAY_TRAIN_ENABLE_PRINT_PATCH := 0
export OPIK_DEFAULT_FLUSH_TIMEOUT := 1

.PHONY: setup demo test test-fast test-ui bench clean

setup:
	@TWIN_MODELS_DIR=$(TWIN_TEST_MODELS_DIR) ./scripts/setup.sh

demo: setup
	$(PY) -m demo.run

# Unit and integration tests (real model, Ray, Qdrant, crawl4ai, SQLite and PostgreSQL), then the
# Playwright page tests in a pytest run of their own (they must not share an event loop with asyncio tests).
test: setup
	$(PY) -m pytest -m "not ui" -q --durations=15
	$(PY) -m pytest -m ui -q -p no:asyncio || [ $$? -eq 5 ]  # 5: no page tests collected

test-fast: setup
	$(PY) -m pytest -m "not ui and not slow" -q

bench: setup
	$(PY) -m benchmarks.ingest
	$(PY) -m benchmarks.train
	$(PY) -m benchmarks.serve
	$(PY) -m benchmarks.evals --data-dir .cache/bench-evals

clean:
	rm -rf .pytest_cache .cache
