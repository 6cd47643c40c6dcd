# Two commands on a fresh machine: `make run` and `make test`. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test venv system-deps pg-deps demo bench bench-anchor screenshots clean

venv: $(STAMP)

# Reinstall only when a requirements file or the package metadata changes.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

# Debian chromium for the browser tests (playwright drives it; no browser download). `make test` requires it
# (RBFT_TEST_BROWSER_REQUIRED=1, like RBFT_TEST_PG_REQUIRED): a missing browser fails the browser tests.
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "error: /usr/bin/chromium missing and not root; run as root or apt-get install chromium" >&2; exit 1; fi; \
	fi

# Debian's PostgreSQL server: `make test` runs the database tests on SQLite and on a throwaway cluster.
pg-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
		else echo "error: PostgreSQL server binaries missing; run as root or apt-get install postgresql" >&2; exit 1; fi; \
	fi

demo: venv
	$(VENV)/bin/rbft demo prepare

run: venv demo
	$(PY) app.py --host $(HOST) --port $(PORT)

# The suite runs on TEST_WORKERS pytest-xdist processes (each test file on one worker; tests use one torch thread),
# then the bad-input catalogue check alone, reading the outcomes the parallel run saved (tests/outcomes.py).
TEST_WORKERS ?= 2
OUTCOMES := test-artifacts/outcomes.json
CATALOGUE := tests/core/test_bad_inputs.py::test_every_catalogue_test_ran_and_passed_in_this_run
test: venv system-deps pg-deps
	@mkdir -p test-artifacts && rm -f $(OUTCOMES)
	RBFT_TEST_BROWSER_REQUIRED=1 $(PY) tests/pg_cluster.py -- /bin/bash -c '\
		RBFT_TEST_OUTCOMES_OUT=$(OUTCOMES) $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) \
			--dist loadfile --durations=20 --deselect $(CATALOGUE) && \
		RBFT_TEST_OUTCOMES_IN=$(OUTCOMES) $(PY) -m pytest -q -p no:cacheprovider $(CATALOGUE)'

# The README's pictures: browser tests drive each tab on a small demo world and write docs/images/*.png.
screenshots: venv system-deps
	RBFT_SCREENSHOTS=1 RBFT_TEST_BROWSER_REQUIRED=1 $(PY) -m pytest -q -p no:cacheprovider tests/browser/test_screenshots.py

# LLaMA-Factory, the training bench's anchor, in its own virtualenv (it pins other transformers/peft versions).
LF_VENV ?= .venv-lf
bench-anchor: $(LF_VENV)/.installed

$(LF_VENV)/.installed:
	@test -x $(LF_VENV)/bin/python || $(PYTHON) -m venv $(LF_VENV)
	$(LF_VENV)/bin/python -m pip install -q --upgrade pip
	$(LF_VENV)/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(LF_VENV)/bin/python -m pip install -q llamafactory==0.9.5 torch==2.14.1 torchvision==0.29.1
	@touch $@

bench: venv bench-anchor
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
