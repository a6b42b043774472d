# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
TORCH     ?= torch==2.13.0
export DAGSTER_HOME ?= $(CURDIR)/.kline/dagster
# Test processes (pytest-xdist); each has its own stores (kline_assets_tests/conftest.py).
WORKERS   ?= 2
PYTEST    := $(PY) -m pytest -q -n $(WORKERS) --dist loadfile

.PHONY: install browser loadgen demo test test-fast lint ui validate bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: $(STAMP)
	$(PY) -c 'from kline_assets.lib.instance import ensure_home; ensure_home()'

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/kline demo

# The page tests drive Debian's Chromium (Playwright with executable_path); without it they
# skip and say so.
browser:
	@command -v chromium >/dev/null 2>&1 || apt-get install -y -qq chromium >/dev/null 2>&1 \
	  || (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  || echo "chromium not installed (needs root and Debian's packages): page tests will skip"

# bench/query.py loads the service with wrk when it is there (else with Python threads, which
# take CPU from the service they measure).
loadgen:
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 \
	  || echo "wrk not installed: bench/query.py falls back to httpx threads"

test: install browser $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/ruff check .
	$(VENV)/bin/dagster definitions validate -w workspace.yaml
	$(PYTEST)

# Everything but the end-to-end tests marked slow (kill -9, Chromium, whole pipelines).
test-fast: install $(DAGSTER_HOME)/dagster.yaml
	$(PYTEST) -m "not slow"

lint: install
	$(VENV)/bin/ruff check .

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster dev -w workspace.yaml

validate: install $(DAGSTER_HOME)/dagster.yaml
	$(VENV)/bin/dagster definitions validate -w workspace.yaml

bench: install loadgen
	$(PY) bench/price_aligned.py
	$(PY) bench/price_month.py
	$(PY) bench/features.py
	$(PY) bench/stock_monthly.py
	$(PY) bench/query.py

clean:
	$(PY) -m kline_assets.resources.clickhouse.engine
