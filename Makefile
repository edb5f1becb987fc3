# Quick start: `make demo` runs the whole pipeline on the sample content, `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/comms demo

lint: $(STAMP)
	$(BIN)/ruff check comms tests $(wildcard bench)
	$(BIN)/ruff format --check comms tests $(wildcard bench)
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) public var .pytest_cache .mypy_cache .ruff_cache
