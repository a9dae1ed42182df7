# mmw: `make demo` and `make test` install everything they need into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test bench bench-day eval lint typecheck clean lock browser test-fast

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml $(wildcard mmw_tasks/parse/csrc/*.[ch])
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the pinned dependencies (production, tests, lint) and mmw itself

demo: $(STAMP)  ## simulate a worm outbreak, run the real Airflow DAG over it, print the report path
	$(BIN)/mmw demo

test: $(STAMP) browser  ## the whole test suite (what CI runs); a missing Chromium fails the report test
	MMW_REQUIRE_BROWSER=1 MMW_MUTATION_EXAMPLES=300 $(BIN)/python -m pytest -q --durations=8

test-fast: $(STAMP)  ## the suite less the airflow and integration tests, on both cores (under 90 s); no Chromium: its test skips
	$(BIN)/python -m pytest -q -m "not airflow and not integration" -n 2 --dist loadfile --browser-optional --durations=8

browser:  ## apt-get what tests need: headless Chromium + chromedriver (report test), PostgreSQL + Redis (Celery stack); nothing when there
	bash tests/setup_chromium.sh

bench: $(STAMP)  ## parsing and pipeline benchmarks (prints figures)
	$(BIN)/python -m bench

bench-day: $(STAMP)  ## the whole daily job on a 40M-line simulated site-day, stage by stage (ARGS="--sizes 4M,10M --days 7")
	$(BIN)/python -m bench.day $(ARGS)

lint: $(STAMP)  ## ruff (lint, format check), mypy on mmw_tasks, sqlfluff (DuckDB) on sql/; what CI runs first
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint sql

eval: $(STAMP)  ## the labelled detection benchmark: 80 simulated site-days, tables, targets checked
	$(BIN)/python -m mmw_eval

typecheck: $(STAMP)  ## mypy over mmw_tasks ([tool.mypy] in pyproject.toml)
	$(BIN)/mypy

lock:  ## re-resolve requirements.lock (production) and requirements-dev.lock (tests, lint) from their .in files
	$(BIN)/uv pip compile requirements.in --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile requirements-dev.in -c requirements.lock --python-version 3.11 -o requirements-dev.lock

clean:  ## remove the venv, demo output and local Airflow home
	rm -rf $(VENV) .airflow demo mmw_tasks/parse/*.so
