# The README's two commands: `make up` (the local platform, end to end) and `make test` (every test).
# Each creates .venv and installs the project when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlplat-installed
# checkov pins an older boto3/botocore and packaging than the project uses, so it gets a tool environment of its own;
# the tests call its binary.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.checkov-installed
CHECKOV_VERSION := 3.3.30

.PHONY: up down test lint install clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,cloud]'
	touch $(STAMP)

$(CHECKOV_STAMP): Makefile
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV_STAMP)

install: $(STAMP) $(CHECKOV_STAMP)

up: $(STAMP)
	$(BIN)/mlplat up --local

down: $(STAMP)
	$(BIN)/mlplat down --local

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(CHECKOV_STAMP)
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .mlplat .pytest_cache .mypy_cache .ruff_cache
