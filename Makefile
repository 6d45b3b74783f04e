# osmTalk Billing. `make run` (whole stack + demo traffic) and `make test` set up everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# The lockfiles are resolved for Linux x86_64 / CPython 3.11 (the Dockerfile's base image and CI).
LOCK := $(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 \
	--python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" --quiet

.PHONY: install browser lint test serve run check-ledger bench lock clean

# Exactly the locked versions, every file checked against its hash (requirements-dev.lock: the
# runtime of requirements.lock plus the embedded servers and the dev tools), then the project
# itself without dependencies; `pip check` fails when pyproject.toml needs what the lock lacks
# (run `make lock`).
$(STAMP): requirements-dev.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements-dev.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

# Re-resolve both lockfiles after a change to pyproject.toml's dependencies; versions already
# locked stay unless `LOCK_ARGS=--upgrade` (or `--upgrade-package NAME`). Needs only uv (from the
# current lock), not an install that matches pyproject.toml.
lock:
	test -x $(VENV)/bin/uv || { test -x $(PY) || $(PYTHON) -m venv $(VENV); \
		$(PY) -m pip install -q --require-hashes -r requirements-dev.lock; }
	$(LOCK) $(LOCK_ARGS) -o requirements.lock
	$(LOCK) $(LOCK_ARGS) --extra embedded --extra dev -o requirements-dev.lock

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

test: install browser lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

serve: $(STAMP)
	$(PY) -m dev.stack

run: $(STAMP)
	$(PY) -m dev.stack --demo

check-ledger: install
	$(PY) -m dev.check_ledger

bench: install
	$(PY) -m bench.run

clean:
	rm -rf .run build *.egg-info
