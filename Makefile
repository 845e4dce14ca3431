# DirOps Portal: `make demo` and `make test` set up everything on a fresh Debian machine (as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the portal, its lab and its browser tests run on (PostgreSQL: the tests marked `postgres`).
APT_PACKAGES := redis-server chromium fonts-dejavu-core samba samba-ad-dc ldb-tools postgresql-15
PYTEST_ARGS ?=
# Test modules run in parallel (pytest-xdist), each worker with a lab of its own (portal/pytest_defaults.py);
# a module's tests stay on one worker and share its lab. The suite mostly waits on the lab and the browser,
# so more workers than cores pays: PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 3
PG_PYTEST_ARGS ?=
# The tests' own PostgreSQL (`manage.py stack up postgres`); another port keeps two checkouts apart.
POSTGRES_TEST_PORT ?= 5439
POSTGRES_URL ?= postgres://dirops@127.0.0.1:$(POSTGRES_TEST_PORT)/dirops
# Exact versions with their hashes, for the machines' Python and architecture (the image uses the same):
# base.lock is what production runs (Dockerfile), dev.lock adds the lab, test, bench and tooling extras.
LOCKS := requirements/pip.lock requirements/base.lock requirements/dev.lock
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
LOCK_ARGS ?=

.PHONY: demo test test-postgres bench install system-packages lint lock clean-run

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Only what the lock names, each file checked against its hash; then the project itself, adding nothing.
$(STAMP): pyproject.toml $(LOCKS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements/pip.lock
	$(PY) -m pip install -q --require-hashes -r requirements/dev.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: system-packages $(STAMP)

# After a change to the dependencies in pyproject.toml. Pins already in the locks are kept unless
# LOCK_ARGS=--upgrade (or --upgrade-package NAME); dev.lock takes base.lock's pins, so both agree.
lock: $(STAMP)
	$(VENV)/bin/uv pip compile -q pyproject.toml $(LOCK_TARGET) $(LOCK_ARGS) \
	  --custom-compile-command 'make lock' -o requirements/base.lock
	$(VENV)/bin/uv pip compile -q pyproject.toml --extra lab --extra test --extra bench -c requirements/base.lock \
	  $(LOCK_TARGET) $(LOCK_ARGS) --custom-compile-command 'make lock' -o requirements/dev.lock

demo: export LAB_MODE := 1
# The demo's local accounts are ready to click (no authenticator to enrol); set LOCAL_ACCOUNTS_TOTP=1 to try
# the second factor. Production keeps the default: on.
demo: export LOCAL_ACCOUNTS_TOTP ?= 0
demo: export LAB_SYNC_LATENCY_SECONDS := 3
demo: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py demo_accounts
	$(PY) manage.py lab ad up
	$(PY) manage.py lab seed
	$(PY) manage.py lab cloud up
	trap '$(PY) manage.py lab cloud down; $(PY) manage.py lab ad down' EXIT; \
	CONNECTIVITY_CHECK_STEP_DELAY=$${CONNECTIVITY_CHECK_STEP_DELAY:-0.7} \
	  $(PY) manage.py stack run --workers 2 --bind 127.0.0.1:8000

# Tests run their own servers (own var dir, own Redis port) so a running demo is never touched;
# they are started here and stopped on the way out, pass or fail.
test: export DIROPS_VAR_DIR := $(CURDIR)/var/test
test: export REDIS_URL := redis://127.0.0.1:6391/0
test: export POSTGRES_URL := $(POSTGRES_URL)
# Benchmarks keep their own labs (seeded once, reused) apart from the tests' and the demo's.
bench: export DIROPS_VAR_DIR := $(CURDIR)/var/bench
bench: export REDIS_URL := redis://127.0.0.1:6392/0

test: install
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py stack up redis postgres
	trap '$(PY) manage.py stack down' EXIT; \
	$(VENV)/bin/ruff check . && \
	$(PY) -m pytest tests/unit tests/integration tests/e2e --durations=20 -n $(PYTEST_WORKERS) --dist loadfile \
	  $(PYTEST_ARGS) && \
	$(MAKE) --no-print-directory test-postgres

# The tests marked `postgres` once more, on PostgreSQL (pytest-django creates test_dirops there). make test
# runs it with its servers up; by hand, start them first (`manage.py stack up redis postgres`) and give both
# commands the same DIROPS_VAR_DIR, REDIS_URL and POSTGRES_URL.
test-postgres:
	DATABASE_URL='$(POSTGRES_URL)' $(PY) -m pytest -m postgres $(PG_PYTEST_ARGS)

# Each benchmark stops the lab servers it started (portal/lab/config.py servers_left_as_found); this trap
# stops what the stack started.
bench: install
	$(PY) manage.py stack up redis
	trap '$(PY) manage.py stack down' EXIT; \
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: install
	$(VENV)/bin/ruff check .
