# carehouse: the two commands. Needs only python3 (3.11+) and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_DIR := .carehouse/uv
UV := $(shell command -v uv 2>/dev/null || echo $(UV_DIR)/bin/uv)
RUN := $(UV) run --frozen

.PHONY: help install run test lint typecheck sqllint pytest quick down clean

help:
	@echo "make run   - start embedded services, generate demo data, run the pipeline, print a summary"
	@echo "make test  - everything CI runs: ruff, mypy, pytest (which runs sqlfluff too)"
	@echo "make quick - the inner loop: lint and the tests that need no services (seconds)"
	@echo "make down  - stop the embedded services"

# uv from the package registry when the machine has none; never a download script.
$(UV_DIR)/bin/uv:
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: uv.lock pyproject.toml | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: .venv/.synced

run: install
	$(RUN) carehouse run

down: install
	$(RUN) carehouse down

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

typecheck: install
	$(RUN) mypy

# sqlfluff's dbt templater needs a live database: it runs inside pytest, against
# the test session's embedded Postgres. This target runs just that test.
sqllint: install
	$(RUN) pytest -q tests/dbt/test_sql_style.py

# Two workers, each with embedded services of its own, taking whole units of work
# (tests/support/units.py): the suite is CPU-bound, and the machine has two cores.
PYTEST_WORKERS ?= 2

pytest: install
	$(RUN) pytest -n $(PYTEST_WORKERS)

# mypy beside pytest: the suite waits on services and subprocesses part of the time.
test: lint
	$(MAKE) --no-print-directory -j2 typecheck pytest

# No embedded service starts: settings, parsing, demo data, the dbt project's layout rules.
quick: lint
	$(RUN) pytest -q -m "not services"

clean:
	rm -rf .carehouse/dbt .pytest_cache .mypy_cache .ruff_cache
