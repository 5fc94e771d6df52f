# The two commands a newcomer needs:
#   make run   -- install the runtime lock into .venv and run the whole pipeline (dvc repro)
#   make test  -- install the runtime and test lock into .venv and run the test suite
# Any Python 3.11, 3.12 or 3.13 works: the first of python3.11, python3.12, python3.13, python3
# that runs and is one of those is used, or the one given as `make run PYTHON=/path/to/python3.x`.
SUPPORTED := (3, 11) <= sys.version_info[:2] <= (3, 13)
ifndef PYTHON
PYTHON := $(firstword $(foreach p,python3.11 python3.12 python3.13 python3,\
	$(shell $(p) -c 'import sys; sys.exit(not ($(SUPPORTED)))' >/dev/null 2>&1 && echo $(p))))
endif
VENV := .venv
BIN := $(VENV)/bin
# uv installs the locks (docs/dependencies.md: the timings against pip); pinned, from PyPI.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# Stage commands in dvc.yaml run `python`: make it the project's interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test install install-test chromium repro bench lock clean-venv

run: install
	dvc repro
	@python -m pipeline.tools.summary

test: install-test chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The browser tests (tests/test_web.py) run the page of `kws web` in a headless Chromium:
# installed here from the distribution's packages when missing (as root); otherwise they skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	command -v google-chrome >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "note: no chromium (and not root): tests/test_web.py's browser tests will skip"; fi

install: $(RUN_STAMP)

install-test: $(TEST_STAMP)

# The venv and uv in it (pip, which comes with the venv, installs the pinned uv).
$(UV): Makefile
	@test -x $(BIN)/python || test -n "$(PYTHON)" || { echo "error: no Python 3.11, 3.12 or \
	3.13 found (tried python3.11, python3.12, python3.13, python3); install one, or run make \
	PYTHON=/path/to/python3.x" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(not ($(SUPPORTED)))' || { \
	echo "error: PYTHON=$(PYTHON) is not Python 3.11, 3.12 or 3.13" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	touch $(UV)

# `uv pip sync`: the venv gets exactly the lock (what an older lock had and this one lacks goes);
# then the project itself, editable. The test lock is the runtime lock plus the test tools, so it
# serves `make run` too; installing the runtime lock alone removes the test tools again.
$(RUN_STAMP): requirements.lock pyproject.toml $(UV)
	$(UV) pip sync -q --python $(BIN)/python requirements.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	rm -f $(TEST_STAMP)
	touch $(RUN_STAMP)

$(TEST_STAMP): requirements-test.lock requirements.lock pyproject.toml $(UV)
	$(UV) pip sync -q --python $(BIN)/python requirements-test.lock
	$(UV) pip install -q --python $(BIN)/python --no-deps --no-build-isolation -e .
	touch $(TEST_STAMP) $(RUN_STAMP)

# Re-resolve both locks after a change to the dependencies in pyproject.toml (the versions already
# locked are kept where they still fit; UV_ARGS=--upgrade takes the newest). One universal lock
# serves Python 3.11 to 3.13; the test lock is constrained to the runtime lock's versions.
lock: $(UV)
	$(UV) pip compile -q $(UV_ARGS) --universal --python-version 3.11 pyproject.toml \
		-o requirements.lock
	$(UV) pip compile -q $(UV_ARGS) --universal --python-version 3.11 pyproject.toml \
		--extra test -c requirements.lock -o requirements-test.lock

repro: install
	dvc repro

bench: install
	$(BIN)/python -m bench.run_all

clean-venv:
	rm -rf $(VENV)
