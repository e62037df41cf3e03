# opentac: `make demo` runs the main job, `make test` runs every test.
# Both create (or reuse) a virtualenv in .venv and install what they need.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench install clean services

$(STAMP): pyproject.toml sandbox/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./sandbox -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tac demo

lint: $(STAMP)
	$(BIN)/ruff check src sandbox/src tests
	$(BIN)/ruff format --check src sandbox/src tests
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

services:
	@scripts/ensure-services.sh

test: $(STAMP) lint typecheck services
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(STAMP)
	$(BIN)/pytest -q -m unit

bench: $(STAMP) services
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
