# Sluice: `make run` sets up everything and runs Sluice; `make test` sets up everything and tests.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: setup run test lint bench screenshots clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/sluice run

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The e2e tests drive Debian's Chromium (Playwright cannot download its own browsers here);
# the ClickHouse warehouse is tested against Debian's clickhouse-server.
CHROMIUM = /usr/bin/chromium
CLICKHOUSE = /usr/sbin/clickhouse-server
$(CHROMIUM) $(CLICKHOUSE):
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends chromium clickhouse-server

test: lint $(CHROMIUM) $(CLICKHOUSE)
	$(BIN)/pytest

# Every page at 1440 and 390 px wide, as an admin and as a viewer: e2e/artifacts/screens/.
screenshots: setup $(CHROMIUM)
	$(BIN)/pytest -q -p no:randomly e2e/test_screens.py

bench: setup
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.transform
	$(BIN)/python -m bench.s3

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
