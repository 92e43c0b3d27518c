# callkeeper: developer and CI entry points. `make test` is what CI runs (.ci/run).
#
#   make venv          .venv with callkeeper and its dev tools (pip install -e '.[dev]')
#   make system-packages  the Debian packages the tests need (scripts/system-packages, as root)
#   make test          pytest (starts the sandbox Asterisk itself) with a coverage report, then lint
#   make lint          ruff and mypy (strict) on daemon, tests and bench
#   make sandbox-up    the sandbox Asterisk with the test dialplan, left running
#                      (pytest reuses it with CALLKEEPER_SANDBOX_REUSE=1)
#   make sandbox-down  stop it (the rootfs stays cached: the next start takes a second)
#   make demo          scripts/demo
#   make images        both container images with podman (docker/build-images: sizes, seconds)
#   make screenshot    refresh docs/inbox.png (the README's picture of the inbox) with headless Chromium
#
# The sandbox needs root; see scripts/asterisk-sandbox for its settings (ARI_PORT, ...).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv system-packages test lint sandbox-up sandbox-down demo images screenshot

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

test: system-packages venv
	$(BIN)/python -m pytest --cov --cov-report=term
	$(MAKE) --no-print-directory lint

system-packages:
	scripts/system-packages

lint: venv
	$(BIN)/ruff check daemon tests bench
	$(BIN)/mypy

sandbox-up:
	scripts/asterisk-sandbox up --with-tests

sandbox-down:
	scripts/asterisk-sandbox down

demo: venv
	scripts/demo

images: venv
	PYTHON=$(BIN)/python docker/build-images

screenshot: venv
	CALLKEEPER_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/web/test_browser.py
