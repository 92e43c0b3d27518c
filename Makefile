# callkeeper: developer and CI entry points. `make test` is what CI runs (.ci/run).
#
#   make venv          .venv with callkeeper and its dev tools (pip install -e '.[dev]')
#   make test          pytest (starts the sandbox Asterisk itself), then lint
#   make lint          ruff and mypy
#   make sandbox-up    the sandbox Asterisk with the test dialplan, left running
#                      (pytest reuses it with CALLKEEPER_SANDBOX_REUSE=1)
#   make sandbox-down  stop it (the rootfs stays cached: the next start takes a second)
#   make demo          scripts/demo
#   make screenshot    refresh docs/inbox.png (the README's picture of the inbox) with headless Chromium
#
# The sandbox needs root; see scripts/asterisk-sandbox for its settings (ARI_PORT, ...).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test lint sandbox-up sandbox-down demo screenshot

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

test: venv
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory lint

lint: venv
	$(BIN)/ruff check daemon tests
	$(BIN)/mypy

sandbox-up:
	scripts/asterisk-sandbox up --with-tests

sandbox-down:
	scripts/asterisk-sandbox down

demo: venv
	scripts/demo

screenshot: venv
	CALLKEEPER_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/web/test_browser.py
