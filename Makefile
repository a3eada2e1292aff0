# One Makefile: `make run` serves the demo, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app portal
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install system-deps run serve migrate seed test test-unit test-pg test-e2e lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian packages the tests need: Chromium (browser tests), a CJK font and poppler (PDFs).
system-deps:
	@bash scripts/system-deps.sh

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo --if-empty

run: seed
	$(FLASK) run --host $(HOST) --port $(PORT)

# Production-style serving: gunicorn with gunicorn.conf.py (set PORTAL_ENV=production and the
# secrets in the environment; see .env.example and deploy/nginx.conf.example).
serve: migrate
	$(BIN)/gunicorn --config gunicorn.conf.py 'portal:create_app()'

test: install system-deps lint test-unit test-pg test-e2e

test-unit: install
	$(BIN)/pytest tests -q -p no:cacheprovider

# PostgreSQL run: required when PG_REQUIRED=1 (CI), skipped with a note when unreachable.
test-pg: install
	@if $(BIN)/python scripts/pg_available.py "$(PG_TEST_URL)"; then \
		TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest tests -q -p no:cacheprovider; \
	elif [ "$${PG_REQUIRED:-0}" = "1" ]; then \
		echo "PostgreSQL at $(PG_TEST_URL) is required (PG_REQUIRED=1) but unreachable"; exit 1; \
	else echo "PostgreSQL unreachable: skipping the PostgreSQL run (set PG_REQUIRED=1 to fail)"; fi

test-e2e: install
	$(BIN)/pytest e2e -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check portal tests e2e scripts migrations

format: install
	$(BIN)/ruff format portal tests e2e scripts

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
