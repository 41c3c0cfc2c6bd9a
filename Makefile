# The two set-up commands: `make run` and `make test`. Both create .venv and install
# requirements-dev.txt on first use; with DATABASE_URL / REDIS_URL unset they start an embedded
# PostgreSQL and Redis under .devdata/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench package wheelhouse clean-devdata

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m devtools.run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# Handler vs database floor at 1M rows (README "Performance"); not part of `make test`.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Deployment (README "Deployment"): build/<stage>/cloudformation (SAM + Gateway Responses) and
# build/<stage>/terraform. PACKAGE_ARGS="--wheelhouse .devdata/wheelhouse" packages offline.
STAGE ?= dev
WHEELHOUSE ?= .devdata/wheelhouse
package: $(STAMP)
	$(BIN)/python -m deploy.package $(STAGE) $(PACKAGE_ARGS)

# Linux wheels for the Lambda runtime (pip download --platform manylinux2014_x86_64 ...), for offline packaging.
wheelhouse: $(STAMP)
	$(BIN)/python -m deploy.wheelhouse $(WHEELHOUSE)

clean-devdata:
	rm -rf .devdata
