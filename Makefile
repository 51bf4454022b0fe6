# The two set-up commands of the README. Both work on a fresh machine with only Python and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench ibm-suite clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## make demo: install qmux and walk through the sessions guide on the embedded backends
demo: $(VENV)/.installed-dev
	$(BIN)/python -m qmux demo

## make test: lint, type-check and run the whole test suite
# Some system tests drive programs of Debian's: the PostgreSQL journal tests start a server from its
# binaries, the Jobs page's browser tests drive its Chromium. Each entry is `what-to-look-for=package`;
# the packages whose file is missing are installed when we may (root, apt-get); else those tests skip.
SYSTEM_PACKAGES := '/usr/lib/postgresql/*/bin/initdb=postgresql' '/usr/bin/chromium=chromium'

test: $(VENV)/.installed-dev
	@missing=; for need in $(SYSTEM_PACKAGES); do \
		ls $${need%%=*} >/dev/null 2>&1 || missing="$$missing $${need#*=}"; \
	done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's$$missing for the tests that need them"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } >/dev/null 2>&1 \
			|| echo "could not install$$missing: the tests that need them will be skipped"; \
	fi
	$(BIN)/ruff check qmux tests examples bench
	$(BIN)/ruff format --check qmux tests examples bench
	$(BIN)/mypy --strict qmux
	$(BIN)/python -m pytest

## make bench: run every benchmark and write bench/RESULTS.md
bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

## make ibm-suite: run qiskit-ibm-runtime's own integration suite against `qmux serve --ibm-compat` (minutes)
ibm-suite: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[ibm-suite]'
	$(BIN)/python tools/ibm_suite.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
