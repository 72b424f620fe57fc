# overflyt — the two commands that matter: `make demo` and `make test`.
# Everything the project needs is installed from here: Debian packages, the Python venv (pinned in
# constraints.txt), and the Go build of the lab's vCenter simulator.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PY_DIRS := $(wildcard src tests flows bench)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_HOME ?= $(CURDIR)/.overflyt/prefect

.PHONY: help deps deps-debian deps-python lab-build lint typecheck ansible-lint test test-unit molecule demo bench clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

deps: deps-debian deps-python lab-build  ## Install everything the project needs (idempotent).

deps-debian:  ## Debian packages (as root): Go + govmomi for the simulator, FRR, OpenSSH, iproute2.
	@scripts/install-debian-packages.sh lab/debian-packages.txt

deps-python: $(STAMP)  ## The venv with the pinned Python packages.

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

lab-build: deps-debian  ## Build the lab's vCenter simulator launcher (Go, GOPATH mode; cached).
	@if [ -x lab/build.sh ]; then lab/build.sh; fi

lint: deps-python  ## ruff on the Python code.
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)

typecheck: deps-python  ## mypy --strict on src/.
	$(BIN)/mypy

ansible-lint: deps-python  ## ansible-lint --profile production on playbooks/, roles/, collections/ and molecule/.
	@if ls playbooks/*.yml >/dev/null 2>&1 || ls -d roles/*/ >/dev/null 2>&1; then \
		$(BIN)/ansible-lint --profile production playbooks roles collections molecule; \
	else echo "ansible-lint: no playbooks or roles yet"; fi

test: deps lint typecheck ansible-lint  ## Install what is missing, lint, and run the whole suite.
	@mkdir -p "$(PREFECT_HOME)"
	$(BIN)/pytest

test-unit: deps-python  ## Only the tests that need no lab.
	$(BIN)/pytest -m "not lab"

molecule: deps  ## Molecule scenarios per role against the lab
	@mkdir -p "$(PREFECT_HOME)"
	$(BIN)/pytest tests/lab/test_molecule.py

demo: deps  ## Bring the lab up and run the main job on the sample municipality.
	@scripts/demo.sh

bench: deps  ## Benchmarks: each bench/pN_*.py in order (bench/README.md); results go to bench/RESULTS.md.
	$(PY) bench/run.py

clean:  ## Remove the venv, caches and generated state (brings the lab down first).
	-@if [ -x $(BIN)/overflyt ]; then $(BIN)/overflyt lab down; fi
	rm -rf $(VENV) .overflyt .pytest_cache .mypy_cache .ruff_cache lab/.state lab/.build
