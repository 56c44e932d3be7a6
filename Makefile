# Every target installs what it needs into .venv/ at the repository root.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3.11
export DAGSTER_HOME := $(CURDIR)/dagster_home
export PYTHONUNBUFFERED := 1

.PHONY: demo test install system-deps benchmark ui clean-venv

## demo: the main job end to end on the embedded defaults (SQLite instance in dagster_home/, runs in runs/)
demo: install
	$(PY) -m mission_gym_pipelines.demo

## test: the whole test suite (installs Debian's chromium and postgresql for the browser and Postgres tests)
test: install system-deps
	$(PY) -m pytest

install: $(VENV)/.installed node_modules/.package-lock.json

# The dashboard's chart library (uPlot), pinned in package-lock.json and inlined into runs/dashboard.html.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[pipelines,test]"
	touch $@

system-deps:
	bash scripts/install_system_deps.sh

benchmark: install
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/dagster_overhead.py

## ui: the Dagster UI on the embedded instance, bound to this machine only (http://127.0.0.1:3000)
ui: install
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1

clean-venv:
	rm -rf $(VENV)
