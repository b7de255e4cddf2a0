# Task runner. `make help` lists the tasks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# The OpenID provider the console OIDC tests run on loopback (npm oidc-provider, exact versions from the lock)
OIDC_PEER := tests/peers/oidc-provider
OIDC_STAMP := $(OIDC_PEER)/node_modules/.installed-$(shell cat $(OIDC_PEER)/package-lock.json | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help run test lint typecheck test-sqlite test-postgres bench clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

$(OIDC_STAMP): $(OIDC_PEER)/package-lock.json
	npm ci --prefix $(OIDC_PEER) --no-audit --no-fund
	@touch $@

run: $(STAMP) ## Set up and run the embedded default (SQLite, builtin identity) on http://127.0.0.1:8000
	$(BIN)/silver-auth dev

lint: $(STAMP) ## ruff (with security rules) and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

test-sqlite: $(STAMP) $(OIDC_STAMP) ## The suite against SQLite
	SILVER_TEST_DB=sqlite $(BIN)/pytest

test-postgres: $(STAMP) $(OIDC_STAMP) ## The suite against Postgres on 127.0.0.1:5432 (database test)
	SILVER_TEST_DB=postgres $(BIN)/pytest

test: lint typecheck test-sqlite test-postgres ## Set up and run everything: lint, types, the suite on SQLite and on Postgres

bench: $(STAMP) ## Throughput against a bare Starlette baseline (needs wrk and Postgres; see docs/performance.md)
	$(BIN)/python bench/throughput.py

clean: ## Remove the virtualenv and caches (not the data directory)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
