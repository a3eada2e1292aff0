# One Makefile: `make run` serves the demo, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app portal
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install translations system-deps run serve migrate seed test test-unit test-pg test-e2e lint security format clean bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The English catalog (issue 11): messages.po is committed, messages.mo is compiled here.
MO := portal/translations/en/LC_MESSAGES/messages.mo
$(MO): portal/translations/en/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel -q compile -d portal/translations -l en

install: $(VENV)/.installed $(MO)

# Extract new messages into the catalog and compile it (translate the empty msgstr entries).
translations: $(VENV)/.installed
	bash scripts/update_translations.sh

# Debian packages the tests need: Chromium (browser tests), a CJK font and poppler (PDFs).
system-deps:
	@bash scripts/system-deps.sh

migrate: install
	$(FLASK) db upgrade

seed: migrate
	$(FLASK) seed-demo --if-empty

# The outbox worker (platform exchange, issue 8) and the job worker (exports, 结息, deadline
# reminders; issue 11) run in the background while the server runs in the foreground; both stop
# when the server does.
run: seed
	$(FLASK) platform worker & worker=$$!; \
	$(FLASK) jobs worker & jobs=$$!; \
	trap 'kill $$worker $$jobs 2>/dev/null; wait $$worker $$jobs 2>/dev/null' EXIT; \
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

# The benchmark (issue 10, docs/performance.md): gunicorn with the production settings on a
# free loopback port, a bounded load at 1 and 4 users, SQLite and PostgreSQL, the large and the
# small dataset (seeded once into instance/bench/ and the `bench` databases). Writes
# bench/results.json. BENCH_ARGS="--db sqlite --quick" for a short run.
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: install security
	$(BIN)/ruff check portal tests e2e scripts migrations bench
	$(BIN)/ruff format --check portal tests e2e scripts migrations bench

# Static security checks (issue 9): bandit with [tool.bandit] from pyproject.toml; every
# finding is fixed or justified inline with `# nosec BXXX - reason`.
security: install
	$(BIN)/bandit -c pyproject.toml -r portal scripts -q

format: install
	$(BIN)/ruff format portal tests e2e scripts

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache .hypothesis
