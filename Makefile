# kaon developer entry points.
#   make up     [ARGS="..."]          run kaon on this machine (kaon up)
#   make test   [PYTEST_ARGS="..."] [TESTS=tests/x.py]   the whole suite (pytest over tests/)
#   make lint                         ruff, then mypy (config in pyproject.toml)
#   make bench  [ARGS="..."]          benchmarks/api_bench.py
# Every target runs scripts/bootstrap.sh first (a fast no-op when all is there).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
ARGS        ?=
PYTEST_ARGS ?=
TESTS       ?= tests
# Parallel by default (pytest-xdist, one worker per core, whole files per
# worker so module-scoped servers start once).  PYTEST_JOBS=0 runs serially.
PYTEST_JOBS ?= auto
ifeq ($(PYTEST_JOBS),0)
PYTEST_PAR  :=
else
PYTEST_PAR  := -n $(PYTEST_JOBS) --dist loadfile
endif

.PHONY: help bootstrap up test lint bench

help:
	@echo "make up [ARGS=...]          run kaon (kaon up)"
	@echo "make test [PYTEST_ARGS=...] run the test suite (PYTEST_JOBS=0 for serial)"
	@echo "make lint                   ruff check and mypy kaon"
	@echo "make bench [ARGS=...]       run benchmarks/api_bench.py"
	@echo "make bootstrap              install what the above need"

bootstrap:
	@bash scripts/bootstrap.sh

up: bootstrap
	exec $(VENV)/bin/kaon up $(ARGS)

# pytest's exit code is kept (make itself reports any failure as 2); exit 5
# (no tests collected) is called out so it is never read as success.
test: bootstrap
	@rc=0; $(PY) -m pytest $(PYTEST_PAR) -rfEs $(PYTEST_ARGS) $(TESTS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): FAILED" >&2; fi; \
	exit $$rc

# Both run even when ruff fails, so one pass shows every finding.
lint: bootstrap
	@rc=0; $(VENV)/bin/ruff check $(wildcard kaon tests benchmarks) || rc=1; \
	$(VENV)/bin/mypy kaon || rc=1; \
	exit $$rc

bench: bootstrap
	@if [ -f benchmarks/api_bench.py ]; then \
		$(PY) benchmarks/api_bench.py $(ARGS); \
	else \
		echo "make bench: benchmarks/api_bench.py does not exist yet; nothing to run" >&2; \
	fi
