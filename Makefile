# The two commands of the README: `make dev` (run the embedded stack) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "signals-stream needs Python 3.11+ (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[local]'
	$(BIN)/signals-stream dev

test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) signals-data .pytest_cache .ruff_cache .mypy_cache
