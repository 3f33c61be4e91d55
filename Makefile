# `make demo` and `make test` each set up .venv on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: browser postgres demo test lint bench accuracy long-horizon clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build first (constraints.txt), then the package with its extras
	# (tuning: Optuna and Ray Tune, whose engines the tests run)
	$(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,datasets,tuning]"
	touch $(STAMP)

# The dashboard test drives Debian's chromium and chromedriver (never a downloaded browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# The store tests start a throwaway server from Debian's PostgreSQL binaries (never a download).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq postgresql)

demo: $(STAMP)
	$(BIN)/deepcast demo --out runs/demo

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

# The peers (Darts, NeuralForecast) are benchmark-only: installed here, never by demo or test.
$(VENV)/.peers-stamp: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,datasets,tuning,peers]"
	touch $@

accuracy: $(VENV)/.peers-stamp
	$(BIN)/python benchmarks/accuracy.py

long-horizon: $(VENV)/.peers-stamp
	$(BIN)/python benchmarks/long_horizon.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
