# Quick start: `make demo` runs the whole pipeline on the sample content, `make test` runs the checks.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# One worker per core; tests that share a browser or a PostgreSQL cluster carry an xdist_group.
PYTEST := $(BIN)/pytest -q -n auto --dist loadgroup

.PHONY: demo test quick lint docs clean wheel-demo

# -qq: errors only. The editable install's build backend prints notices (not problems) that
# would bury `make demo`'s summary.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/comms demo

lint: $(STAMP)
	$(BIN)/ruff check comms tests $(wildcard bench) docs
	$(BIN)/ruff format --check comms tests $(wildcard bench) docs
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

test: lint
	$(PYTEST)

# The package as an operator installs it: an sdist, the wheel from it, `pip install` (not
# editable) into a fresh virtual environment, then `comms demo` on a copy of the sample site.
# Everything goes under $(WHEEL_DEMO); the checkout stays as it is.
WHEEL_DEMO := $(VENV)/wheel-demo
wheel-demo: $(STAMP)
	rm -rf $(WHEEL_DEMO) && mkdir -p $(WHEEL_DEMO)/source $(WHEEL_DEMO)/site
	cp -r pyproject.toml README.md comms $(WHEEL_DEMO)/source/
	$(BIN)/python -m build --outdir $(WHEEL_DEMO)/dist $(WHEEL_DEMO)/source
	$(PYTHON) -m venv $(WHEEL_DEMO)/env
	$(WHEEL_DEMO)/env/bin/pip install -q $(WHEEL_DEMO)/dist/*.whl
	cp -r comms.toml content static samples $(WHEEL_DEMO)/site/
	cd $(WHEEL_DEMO)/site && ../env/bin/comms demo

# The fast inner loop: no browser, PostgreSQL, subprocess or fuzzing tests, no linters.
quick: $(STAMP)
	$(PYTEST) -m "not slow"

# The documentation site (docs/, mkdocs.yml) at http://127.0.0.1:8001/, rebuilt on every save.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

clean:
	rm -rf $(VENV) public var site .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
