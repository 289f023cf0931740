# The README's two commands: `make up` (the local platform, end to end) and `make test` (every test).
# Each creates .venv and installs the project when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlplat-installed

.PHONY: up down test lint install clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,cloud]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/mlplat up --local

down: $(STAMP)
	$(BIN)/mlplat down --local

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .mlplat .pytest_cache .mypy_cache .ruff_cache
	rm -rf build cost*.png drift.json *-outputs.json plan*.json out.json mlflow.db mlruns
