# The two set-up commands: `make run` and `make test`. Both create .venv and install
# requirements-dev.txt on first use; with DATABASE_URL / REDIS_URL unset they start an embedded
# PostgreSQL and Redis under .devdata/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help run test test-pooled browser-test clients lint typecheck bench package wheelhouse clean-devdata
.DEFAULT_GOAL := help

# `make help` (or `make` alone): every target with its line, the `## ` text after the target.
help: ## this list
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# RUN_ARGS="--scratch": throwaway database, Redis and demo users (see devtools/run.py). The address
# (HOST, PORT) is checked first, with the system's Python: a busy port fails before installing.
run: ## the API on http://127.0.0.1:8000/api with demo data (HOST, PORT, CORS_ALLOW_ORIGIN; RUN_ARGS=--scratch)
	@$(PYTHON) -m devtools.run --check-port $(RUN_ARGS)
	@$(MAKE) --no-print-directory -s $(STAMP)
	$(BIN)/python -m devtools.run $(RUN_ARGS)

test: $(STAMP) ## the whole test suite (PYTEST_ARGS="tests/path -q -x" narrows it)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The database-facing tests again, through PgBouncer in transaction mode in front of the test
# database (devtools/pooler.py; Debian's pgbouncer, installed when missing: apt-get, as root).
POOLED_TESTS := tests/interactions tests/auth tests/sites tests/audit tests/faults tests/test_round_trips.py \
	tests/test_driver.py tests/test_role_settings.py tests/test_pooler.py tests/test_concurrency.py tests/test_health.py
test-pooled: $(STAMP) ## the database-facing tests through PgBouncer (transaction pooling; installs it when missing)
	$(BIN)/python -m devtools.pooler install
	TEST_POOLER=1 $(BIN)/python -m pytest $(POOLED_TESTS) $(PYTEST_ARGS)

# A real browser on another origin against the local run (tests/browser): Debian's Chromium,
# installed by `devtools.browser install` when missing (apt-get, as root), driven by Playwright.
browser-test: $(STAMP) ## Chromium on a second origin against the local run (installs Chromium when missing)
	$(BIN)/python -m devtools.browser install
	BROWSER_TEST=1 $(BIN)/python -m pytest --confcutdir=tests/browser tests/browser $(PYTEST_ARGS)

# The generated clients as a frontend uses them (devtools/clients.py): redocly lint (no warning), the
# TypeScript flow (openapi-typescript, openapi-fetch, tsc --strict, run with Ajv over every response)
# and the Python one (openapi-python-client, mypy --strict, run), against the local run on scratch
# data. Node packages from clients/package-lock.json (npm ci, again when the lock file changes).
NODE_STAMP := clients/node_modules/.installed
$(NODE_STAMP): clients/package.json clients/package-lock.json
	cd clients && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

clients: $(STAMP) $(NODE_STAMP) ## the generated TypeScript and Python clients run against the local run (needs Node.js 20)
	$(BIN)/python -m devtools.clients $(CLIENTS_ARGS)

# ruff's lint rules and its formatting; `make typecheck`: mypy (mypy.ini): --strict over chalicelib/, tests/ and devtools/ with their annotation rules relaxed.
lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy: --strict over chalicelib/, relaxed annotations over tests/ and devtools/
	$(BIN)/mypy

# 1M rows, on loopback (handler vs database floor) and on a modeled network (relays adding
# 0.5 ms each way to PostgreSQL, 0.25 ms to Redis), beside the seed stack of ../shared/anchors/flask_ref
# when present, and cold starts (docs/performance.md); not part of `make test`.
# BENCH_ARGS="--network loopback|modeled --pg-delay-ms 1 --only search --skip-cold-start ...";
# BENCH_ARGS="--scale-out" is the other benchmark: N containers directly and through PgBouncer.
bench: $(STAMP) ## benchmarks beside the seed stack (BENCH_ARGS=...; docs/performance.md)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Deployment (docs/deployment.md): build/<stage>/cloudformation (SAM + Gateway Responses) and
# build/<stage>/terraform, for Lambda's python3.12 on x86_64 whatever $(PYTHON) is (deploy/runtime.py).
# PACKAGE_ARGS="--wheelhouse .devdata/wheelhouse" packages offline.
STAGE ?= dev
WHEELHOUSE ?= .devdata/wheelhouse
package: $(STAMP) ## build/STAGE/ for deployment (STAGE=dev|prod, PACKAGE_ARGS=...)
	$(BIN)/python -m deploy.package $(STAGE) $(PACKAGE_ARGS)

# The Lambda runtime's wheels (pip download --python-version 3.12 --abi cp312 --platform manylinux_2_17..2_34_x86_64
# ...), for offline packaging.
wheelhouse: $(STAMP) ## the Lambda runtime's wheels in WHEELHOUSE, for offline packaging
	$(BIN)/python -m deploy.wheelhouse $(WHEELHOUSE)

clean-devdata: ## delete .devdata/ (the embedded databases, the dev key and login)
	rm -rf .devdata
