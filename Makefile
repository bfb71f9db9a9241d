# The two commands: `make run` (demo portal on http://127.0.0.1:8000) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
UV := .venv/bin/uv
UV_VERSION := 0.13.9
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1

.PHONY: help install install-test run test test-fast lint format migrate worker beat

help:
	@echo "make run    - install, migrate, seed the demo and serve http://127.0.0.1:8000"
	@echo "make test   - ruff, mypy, makemigrations --check and the pytest suite (PostgreSQL + Redis)"
	@echo "make test-fast - the same without the tests marked slow"

.venv/.installed: pyproject.toml uv.lock
	@test -x $(PY) || python3 -m venv .venv
	@test -x $(UV) || .venv/bin/python -m pip install -q "uv==$(UV_VERSION)"
	$(UV) sync --frozen
	@touch $@

# Translations (es, fr): the committed .po files compiled to .mo in pure Python (no gettext needed).
locale/.compiled: .venv/.installed $(wildcard locale/*/LC_MESSAGES/*.po)
	$(PY) manage.py compile_translations
	@touch $@

# Test-only JavaScript (axe-core for the accessibility checks), locked in package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: .venv/.installed locale/.compiled

install-test: install node_modules/.installed

migrate: install
	$(PY) manage.py migrate --noinput

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@bash scripts/run.sh

# ruff on everything; mypy on the service layer (services and selectors, configured in pyproject.toml).
lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

format: install
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

TEST_ENV = DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)}

# Everything CI runs, the `slow` rounds included.
test: install-test lint
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# The same without the tests marked `slow` (long concurrency and volume rounds; each has a short twin).
test-fast: install-test lint
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

.PHONY: restore-drill
# Backup/restore drill: seed a throw-away database, pg_dump -Fc, pg_restore into another, compare
# row counts and checksums (readings included) and decrypt every encrypted value with the keys.
# Also part of `make test` (tests/config/test_restore_drill.py).
restore-drill: install
	$(TEST_ENV) $(PY) scripts/restore_drill.py $(DRILL_ARGS)

.PHONY: bench-migrations
# Migrations of a 5M-reading table while a probe writes and reads it: how long each blocking lock is
# held (own throw-away database; 1-3 minutes). Smaller: make bench-migrations BENCH_ARGS="--rows 500000";
# only what a deployed site still runs: BENCH_ARGS="--before 0004_drop_redundant_indexes" (the bounded
# version of that is a slow test: pytest tests/config/test_migration_locks.py -m slow).
bench-migrations: install
	$(PY) bench/migration_locks.py $(BENCH_ARGS)

.PHONY: bench-monitoring
# Monitoring admin at cohort scale (10,000 participants x 500 readings in its own PostgreSQL database).
bench-monitoring: install
	$(PY) bench/monitoring_changelist.py $(BENCH_ARGS)

.PHONY: bench-tick
# Reminder rules at cohort scale: 100,000 participants, the set-based decision vs the naive loop
# (own database portal_bench_tick).
bench-tick: install
	$(PY) bench/tick.py $(BENCH_ARGS)

.PHONY: bench-redcap
# REDCap push throughput against the fake REDCap over HTTP (own database portal_bench_redcap).
bench-redcap: install
	$(PY) bench/redcap_push.py $(BENCH_ARGS)

.PHONY: bench-webhook test-security
# Webhook load: gunicorn + 20,000 notifications at concurrency 64 on loopback, then a worker drains
# the inbox; prints throughput, p50/p99 and the exactly-once checks (own database portal_bench_webhook).
# Then open loop at fixed rates (10, 100, 300 req/s, 20 s each): p50/p99 per rate, measured from the
# scheduled send time (the closed-loop figure at concurrency 64 only measures queueing).
bench-webhook: install
	$(PY) bench/webhook_load.py $(BENCH_ARGS)
	$(PY) bench/webhook_load.py --rates 10,100,300 --duration 20 $(OPEN_LOOP_ARGS)

# The "prove it holds" checks that run in `make test` too: isolation sweep, secrets, headers, fuzzing.
test-security: install
	$(TEST_ENV) $(PY) -m pytest tests/security $(PYTEST_ARGS)

.PHONY: soak bench-sync
# Soak with faults (about 8 minutes): 200 participants x 60 days linked and back-filled, cuffs syncing,
# 5xx/timeouts/601 bursts/401s injected by the sandbox, one of two Celery workers kill -9'ed three times,
# PostgreSQL restarted once and Redis once (data lost) — the machine's real servers: nothing else may use
# them meanwhile (BENCH_ARGS="--restart-mode database" cuts only the soak's own sessions and Redis DB);
# checks every reading stored once, no needs_reauth, no refresh token lost, every notification processed
# (own database portal_soak, Redis DB 10). Smaller: make soak BENCH_ARGS="--participants 50 --days 30".
soak: install
	$(PY) bench/soak.py $(BENCH_ARGS)

# Sync scheduling against the rate budget (about 5 minutes): 2,000 participants back-filling plus
# notifications against Withings' 120 calls/min; prints the budget used, 601s and notification latency
# (own database portal_bench_sync, Redis DB 11). E.g. make bench-sync BENCH_ARGS="--portal-limit 100 --portal-burst 0".
bench-sync: install
	$(PY) bench/sync_budget.py $(BENCH_ARGS)

.PHONY: bench bench-ingest bench-export bench-import bench-api
# API: readings page latency at 1M readings through the whole stack; de-identification's cost on exports
# (own database portal_bench_api, readings created once and reused).
bench-api: install
	$(PY) bench/api_pages.py $(BENCH_ARGS)
	$(PY) bench/export_deidentified.py
# Ingest: 1M getmeas groups through our parse + upsert vs update_or_create and COPY (own database).
bench-ingest: install
	$(PY) bench/ingest.py $(BENCH_ARGS)

# Export: 1M readings to CSV through our path vs django-import-export and COPY; then peak memory.
bench-export: install
	$(PY) bench/export.py $(BENCH_ARGS)
	$(PY) bench/export_memory.py --formats csv

# CSV import at the 5 MB upload limit (~160k rows): peak RSS of the command and the admin page, each in
# a fresh process, vs the RSS after start-up and vs the whole-file approach; fails above 150 MB
# (own database portal_bench_import, recreated).
bench-import: install
	$(PY) bench/import_memory.py $(BENCH_ARGS)

# Every benchmark, each printing its ratios against baselines measured in the same run (~13 min on 2 cores,
# plus ~5 min for bench-tick: 100,000 participants are created once, then reused).
bench: bench-ingest bench-export bench-import bench-monitoring bench-webhook bench-sync bench-tick bench-api
