# The two commands a newcomer needs:
#   make run   -- install everything into .venv and run the whole pipeline (dvc repro)
#   make test  -- install everything into .venv and run the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stage commands in dvc.yaml run `python`: make it the project's interpreter.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: run test install chromium repro bench clean-venv

run: install
	dvc repro
	@python -m pipeline.tools.summary

test: install chromium
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The browser tests (tests/test_web.py) run the page of `kws web` in a headless Chromium:
# installed here from the distribution's packages when missing (as root); otherwise they skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	command -v google-chrome >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else echo "note: no chromium (and not root): tests/test_web.py's browser tests will skip"; fi

install: $(STAMP)

# Reinstall when the lock file or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q pip==26.0.1 setuptools==80.9.0 wheel==0.45.1
	$(BIN)/python -m pip install -q --no-deps -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

repro: install
	dvc repro

bench: install
	$(BIN)/python -m bench.run_all

clean-venv:
	rm -rf $(VENV)
