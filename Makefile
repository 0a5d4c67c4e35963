# Two commands on a fresh machine:  `make run`  (kibitz all-in-one on http://localhost:8000;
#                                              `PORT=8080 make run` for another port)
#                                   `make test` (the whole test suite; .ci/run calls it)
PYTHON ?= python3
PORT ?= 8000
HOST ?= 127.0.0.1
VENV := .venv
BIN := $(VENV)/bin
# Two installs into one venv: what kibitz needs to run (requirements.lock), and that plus the
# test and lint tooling (requirements-dev.lock includes requirements.lock).
RUN_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# The OpenID Connect provider the single sign-on tests sign in through (npm: oidc-provider).
OIDC_STAMP := tests/fixtures/oidc/node_modules/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-runtime web web-check api-types lint pytest chromium promtool bench clean

run: install-runtime web
	$(BIN)/kibitz up --host $(HOST) --port $(PORT)

test: install web chromium promtool $(OIDC_STAMP)
	bash scripts/test.sh

install: $(STAMP)

install-runtime: $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps -e .
	touch $(RUN_STAMP)

# The full install holds the runtime one: `make run` after `make test` installs nothing more.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements-dev.lock
	$(PIP) --no-deps -e .
	touch $(STAMP) $(RUN_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

$(OIDC_STAMP): tests/fixtures/oidc/package.json tests/fixtures/oidc/package-lock.json
	cd tests/fixtures/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $(OIDC_STAMP)

web: $(WEB_STAMP)
	cd web && npm run --silent build

web-check: $(WEB_STAMP)
	cd web && npm run --silent typecheck && npm run --silent lint

# The web app's API types: each service's OpenAPI -> web/openapi/*.json -> web/src/lib/api-schema/*.d.ts
# (both committed; tests/web/test_api_types_are_current.py fails when they drift).
api-types: install $(WEB_STAMP)
	$(BIN)/python scripts/export_openapi.py
	cd web && npm run --silent gen:api

# Debian's Chromium drives the browser tests (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-liberation >/dev/null; }

# Prometheus's promtool checks the alert rules (tests/deploy): taken out of Debian's prometheus
# package into the venv, so no Prometheus server gets installed or started.
promtool: $(BIN)/promtool

$(BIN)/promtool: | $(STAMP)
	@dir=$$(mktemp -d) && cd $$dir && { apt-get download prometheus >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && apt-get download prometheus >/dev/null; }; } && \
		dpkg-deb -x prometheus_*.deb extracted && cp extracted/usr/bin/promtool $(CURDIR)/$(BIN)/ && \
		cd / && rm -rf $$dir

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest

bench: install
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) web/node_modules web/dist data tests/fixtures/oidc/node_modules
