# Quick start: `make demo` runs the whole pipeline on the sample content, `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One worker per core; tests that share a browser or a PostgreSQL cluster carry an xdist_group.
PYTEST := $(BIN)/pytest -q -n auto --dist loadgroup

.PHONY: demo test quick lint clean

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
	$(BIN)/lint-imports --no-logo

test: lint
	$(PYTEST)

# The fast inner loop: no browser, PostgreSQL, subprocess or fuzzing tests, no linters.
quick: $(STAMP)
	$(PYTEST) -m "not slow"

clean:
	rm -rf $(VENV) public var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
