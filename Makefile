# Task runner. `make help` lists the tasks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every installed package at the version the suite passed with (`make lock` rewrites it)
CONSTRAINTS := constraints.txt
LOCK_VENV := .venv-lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sdk/python/pyproject.toml $(CONSTRAINTS) | cksum | cut -d' ' -f1)
# pytest-xdist processes per test leg: one per core of the 2-core machines (3 measured no faster);
# worksteal, because a few subprocess tests take 5-10 s where most take a fraction of one.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal
# The OpenID provider the console OIDC tests run on loopback (npm oidc-provider, exact versions from the lock)
OIDC_PEER := tests/peers/oidc-provider
OIDC_STAMP := $(OIDC_PEER)/node_modules/.installed-$(shell cat $(OIDC_PEER)/package-lock.json | cksum | cut -d' ' -f1)
# The OpenID Connect relying party (npm openid-client, on oauth4webapi) the OpenID Provider tests run
OIDC_CLIENT_PEER := tests/peers/oidc-client
OIDC_CLIENT_STAMP := $(OIDC_CLIENT_PEER)/node_modules/.installed-$(shell cat $(OIDC_CLIENT_PEER)/package-lock.json | cksum | cut -d' ' -f1)
# The npm standardwebhooks verifier the JavaScript receiver example (docs/examples) runs with in the tests
WEBHOOK_PEER := tests/peers/webhook-receiver
WEBHOOK_STAMP := $(WEBHOOK_PEER)/node_modules/.installed-$(shell cat $(WEBHOOK_PEER)/package-lock.json | cksum | cut -d' ' -f1)
# axe-core, the accessibility engine the browser tests (tests/browser) evaluate in each page
AXE_PEER := tests/peers/axe-core
AXE_STAMP := $(AXE_PEER)/node_modules/.installed-$(shell cat $(AXE_PEER)/package-lock.json | cksum | cut -d' ' -f1)
# The console's browser assets (htmx), from the npm registry at the lock's versions: `make vendor` copies
# them into src/silver_auth/console/static, where the app serves them (nothing is fetched at run time)
CONSOLE_ASSETS := vendor/console
ASSETS_STAMP := $(CONSOLE_ASSETS)/node_modules/.installed-$(shell cat $(CONSOLE_ASSETS)/package-lock.json | cksum | cut -d' ' -f1)
PEERS := $(OIDC_STAMP) $(OIDC_CLIENT_STAMP) $(WEBHOOK_STAMP) $(AXE_STAMP) $(ASSETS_STAMP)

# The browser module (sdk/js): `make sdk-js` copies it into the package under its version's name, where
# the auth host serves it at /sdk/js/seqn-auth@VERSION.js; released versions stay (pages pin them)
SDK_JS_VERSION = $(shell sed -n 's/^export const VERSION = "\(.*\)";$$/\1/p' sdk/js/seqn-auth.js)

.DEFAULT_GOAL := help
.PHONY: help vendor sdk-js run example test lint typecheck test-sqlite test-postgres screenshots lock bench bench-hot clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml sdk/python/pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev]' -e 'sdk/python[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

$(OIDC_STAMP): $(OIDC_PEER)/package-lock.json
	npm ci --prefix $(OIDC_PEER) --no-audit --no-fund
	@touch $@

$(OIDC_CLIENT_STAMP): $(OIDC_CLIENT_PEER)/package-lock.json
	npm ci --prefix $(OIDC_CLIENT_PEER) --no-audit --no-fund
	@touch $@

$(WEBHOOK_STAMP): $(WEBHOOK_PEER)/package-lock.json
	npm ci --prefix $(WEBHOOK_PEER) --no-audit --no-fund
	@touch $@

$(AXE_STAMP): $(AXE_PEER)/package-lock.json
	npm ci --prefix $(AXE_PEER) --no-audit --no-fund
	@touch $@

$(ASSETS_STAMP): $(CONSOLE_ASSETS)/package-lock.json
	npm ci --prefix $(CONSOLE_ASSETS) --no-audit --no-fund
	@touch $@

vendor: $(ASSETS_STAMP) ## Copy the console's browser assets (htmx) from the npm lock into the package
	cp $(CONSOLE_ASSETS)/node_modules/htmx.org/dist/htmx.min.js src/silver_auth/console/static/htmx.min.js

sdk-js: ## Copy the browser module (sdk/js/seqn-auth.js) into the package as seqn-auth@VERSION.js
	@test -n "$(SDK_JS_VERSION)" || { echo 'no VERSION in sdk/js/seqn-auth.js'; exit 1; }
	cp sdk/js/seqn-auth.js 'src/silver_auth/web/static/seqn-auth@$(SDK_JS_VERSION).js'

run: $(STAMP) ## Set up and run the embedded default (SQLite, builtin identity) on http://127.0.0.1:8000
	$(BIN)/silver-auth dev

example: $(STAMP) ## The embedded default on :8000 beside the example app (examples/fastapi-app) on http://127.0.0.1:3000
	$(BIN)/python examples/fastapi-app/run.py

lint: $(STAMP) ## ruff (with security rules) and format check
	$(BIN)/ruff check src tests bench sdk/python/src examples
	$(BIN)/ruff format --check src tests bench sdk/python/src examples

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

test-sqlite: $(STAMP) $(PEERS) ## The suite against SQLite
	SILVER_TEST_DB=sqlite $(PYTEST)

test-postgres: $(STAMP) $(PEERS) ## The suite against Postgres on 127.0.0.1:5432 (database test, and test_gw0… per worker)
	SILVER_TEST_DB=postgres $(PYTEST)

screenshots: $(STAMP) $(AXE_STAMP) ## Screenshots of the console's and the hosted pages' main pages in test-artifacts/screenshots/, for review (Debian's chromium)
	rm -rf test-artifacts/screenshots
	SCREENSHOTS_DIR=test-artifacts/screenshots SILVER_TEST_DB=sqlite $(BIN)/pytest -p no:xdist tests/browser/test_console_scenario.py tests/browser/test_screenshots.py
	@echo "Screenshots in test-artifacts/screenshots/"

test: lint typecheck test-sqlite test-postgres ## Set up and run everything: lint, types, the suite on SQLite and on Postgres

lock: ## Resolve pyproject.toml afresh in a new virtualenv and pin every version in constraints.txt
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q -e '.[dev]' -e 'sdk/python[dev]'
	{ echo "# Written by make lock (pip freeze of a new virtualenv with -e '.[dev]', $$($(LOCK_VENV)/bin/python -V))."; \
	  echo "# make installs with -c $(CONSTRAINTS), so CI gets exactly these; run make test after a lock."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable; } > $(CONSTRAINTS)
	rm -rf $(LOCK_VENV)

bench: $(STAMP) ## Every route against a bare Starlette baseline and better-auth, two workers, memory (needs wrk, Postgres, Redis, Node; see docs/performance.md)
	$(BIN)/python bench/routes.py

bench-hot: $(STAMP) ## The two cache-served routes on uvicorn and granian against the baseline
	$(BIN)/python bench/throughput.py

clean: ## Remove the virtualenv and caches (not the data directory)
	rm -rf $(VENV) $(LOCK_VENV) .mypy_cache .ruff_cache .pytest_cache
