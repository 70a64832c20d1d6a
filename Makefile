# Copytrade: `make run` starts the service with a demo, `make test` runs every check.
# Both bootstrap everything: venv, dependencies, Postgres and Redis, database, migrations.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# The service's own database and Redis db. Tests never touch these (see tests/conftest.py).
export COPYTRADE_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade
export COPYTRADE_REDIS_URL ?= redis://127.0.0.1:6379/0
export COPYTRADE_TEST_DATABASE_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/copytrade_test
export COPYTRADE_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist workers for `make test`: each gets its own copy of the migrated test database
# and its own db on a private redis-server (tests/conftest.py). More workers than cores, as
# most tests wait on sockets and subprocesses; PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 4

.PHONY: help venv services migrate run test lint pytest soak bench clean

help:
	@echo "make run    start Postgres/Redis if needed, migrate, serve on :8000 with the demo"
	@echo "make test   lint, type-check and run the whole test suite (what CI runs)"
	@echo "make bench  run the benchmarks"

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (set PYTHON=python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

services: venv
	@scripts/ensure-services.sh "$(COPYTRADE_DATABASE_URL)" "$(COPYTRADE_REDIS_URL)"

migrate: services
	$(BIN)/python scripts/createdb.py "$(COPYTRADE_DATABASE_URL)"
	$(BIN)/copytrade migrate

run: migrate
	COPYTRADE_DEMO=$${COPYTRADE_DEMO:-true} COPYTRADE_LOG_JSON=$${COPYTRADE_LOG_JSON:-false} \
		$(BIN)/copytrade serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# Tests run with Python's bytecode cache on, even where the environment turns it off
# (PYTHONDONTWRITEBYTECODE): otherwise every worker rewrites and compiles every test module,
# and every service process the e2e tests start compiles app/, on each run.
pytest: venv
	@scripts/ensure-services.sh "$(COPYTRADE_TEST_DATABASE_URL)" "$(COPYTRADE_TEST_REDIS_URL)"
	@scripts/ensure-browser.sh
	@scripts/ensure-prometheus.sh
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test: lint pytest

# Long soak of the crash test: SOAK_KILLS SIGKILLs of the real service mid-burst.
SOAK_KILLS ?= 500
soak: venv
	@scripts/ensure-services.sh "$(COPYTRADE_TEST_DATABASE_URL)" "$(COPYTRADE_TEST_REDIS_URL)"
	COPYTRADE_SOAK_KILLS=$(SOAK_KILLS) $(BIN)/pytest tests/e2e/test_faults.py -k sigkill -p no:cacheprovider --timeout=0 -q

bench: migrate
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis test-output
