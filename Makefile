# The project's interface: a developer and CI run the same targets.
#   make book   set up .venv, execute every chapter at paper scale, build _build/html
#   make test   lint, unit tests, every chapter at CI scale, strict book build, browser checks
#   make bench  benchmarks (speed and memory, as ratios against baselines and machine peaks)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_VERSION := 26.3

# Same seed, same bits on every x86-64 machine: OpenBLAS's AVX-512 kernels round some float64
# products differently from the AVX2 ones the stored results were computed with, so every
# target asks for the AVX2 kernels where the processor has them (lib/superposition/_blas.py
# does the same for `import superposition` before NumPy). A value set by the caller wins.
ifneq ($(shell grep -qsw avx2 /proc/cpuinfo && echo yes),)
export OPENBLAS_CORETYPE ?= Haswell
endif

# Chapters are MyST notebooks, executed in this order ("about" last: it reports on the others).
CHAPTERS := background uand uand_superposed circuits correction interpretability dictionary about
PAGES    := intro.md references.md glossary.md api.rst
TOOLS    := dedupe_scripts.py api_reference.py
LIB      := $(shell find lib -name '*.py' -not -path '*/__pycache__/*')
BOOKCFG  := _config.yml _toc.yml references.bib

.PHONY: all book test lint format bench clean clean-sweeps distclean venv lock unit chapters-ci book-ci site-test help FORCE

all: book

help:
	@sed -n '2,5p' Makefile

# ---------------------------------------------------------------- environment
venv: $(STAMP)
# exactly the hashed lock, then the project itself (built with the locked setuptools)
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

# requirements.lock from the groups declared in pyproject.toml, with hashes. Versions already
# pinned in the lock are kept (the book's numbers must not drift); to move them:
#   make lock LOCK_ARGS=--upgrade   or   make lock LOCK_ARGS="--upgrade-package numpy"
LOCK_EXTRAS := book test dask
LOCK_TOOL   := _build/lock-venv
UV_VERSION  := 0.13.8
lock:
	@test -x $(LOCK_TOOL)/bin/uv || { $(PYTHON) -m venv $(LOCK_TOOL) && \
	  $(LOCK_TOOL)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(LOCK_TOOL)/bin/uv pip compile pyproject.toml $(addprefix --extra ,$(LOCK_EXTRAS)) \
	  --generate-hashes --python $(PYTHON) --custom-compile-command "make lock" \
	  --output-file requirements.lock --quiet $(LOCK_ARGS)

# ---------------------------------------------------------------- chapters
# `make book` executes BOOK_JOBS chapters at a time (one per core), each with one BLAS thread
# (below): two chapters' BLAS threads would otherwise spin against each other. An
# OPENBLAS_NUM_THREADS set by the caller wins.
BOOK_JOBS ?= 2
_build/%.ipynb: export OPENBLAS_NUM_THREADS ?= 1
_build/%.ipynb: export OMP_NUM_THREADS ?= 1
_build/%.ipynb: export MKL_NUM_THREADS ?= 1
# $(1): scale (paper | ci); the executed notebooks land in _build/$(1)/src/book/.
define chapter_rules
_build/$(1)/src/book/%.ipynb: book/%.md $(LIB) $(if $(filter ci,$(1)),book/params/ci/%.yml) | $(STAMP)
	@echo "execute [$(1)] $$<"
	@start=$$$$(date +%s); tools/execute_chapter.sh $$< $$@ $(if $(filter ci,$(1)),book/params/ci/$$*.yml); \
	  echo "  done in $$$$(( $$$$(date +%s) - start )) s"
endef
$(eval $(call chapter_rules,paper))
$(eval $(call chapter_rules,ci))

# the chapters that read results kept in the repository run again when the store changes
KEPT := $(wildcard book/sweeps/store/*.json)
_build/paper/src/book/uand_superposed.ipynb _build/paper/src/book/correction.ipynb: $(KEPT)

# "about" reports on every other executed chapter, so it runs after them, and again whenever the
# commit or the tree's cleanliness changes (it names both): _build/state holds them and is
# rewritten only when they differ
_build/paper/src/book/about.ipynb: _toc.yml _build/state $(patsubst %,_build/paper/src/book/%.ipynb,$(filter-out about,$(CHAPTERS)))
_build/ci/src/book/about.ipynb: _toc.yml _build/state $(patsubst %,_build/ci/src/book/%.ipynb,$(filter-out about,$(CHAPTERS)))

_build/state: FORCE
	@mkdir -p $(@D)
	@{ git rev-parse HEAD 2>/dev/null || echo "not a git checkout"; \
	   git status --porcelain --untracked-files=no 2>/dev/null | sha256sum; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

FORCE:

# the non-notebook pages and the book configuration, copied beside the executed notebooks
_build/%/src/.pages: $(BOOKCFG) $(addprefix tools/,$(TOOLS)) $(addprefix book/,$(PAGES))
	@mkdir -p $(@D)/book
	cp $(BOOKCFG) $(@D)/
	mkdir -p $(@D)/tools && cp $(addprefix tools/,$(TOOLS)) $(@D)/tools/
	cp $(addprefix book/,$(PAGES)) $(@D)/book/
	@touch $@

JB_FLAGS := -W -n --keep-going --builder html

_build/%/html/index.html: _build/%/src/.pages $(foreach c,$(CHAPTERS),_build/%/src/book/$(c).ipynb)
	rm -rf _build/$*/jb
	$(BIN)/jupyter-book build _build/$*/src --path-output _build/$*/jb $(JB_FLAGS)
	rm -rf _build/$*/html && mv _build/$*/jb/_build/html _build/$*/html

book: | $(STAMP)
	$(MAKE) --no-print-directory --jobs=$(BOOK_JOBS) --output-sync=target _build/paper/html/index.html
	rm -rf _build/html && cp -r _build/paper/html _build/html
	@echo
	@echo "The book is built. Open: file://$(CURDIR)/_build/html/index.html"

# ---------------------------------------------------------------- checks
lint: $(STAMP)
	$(BIN)/ruff check lib tests bench tools
	$(BIN)/ruff format --check lib tests bench tools

format: $(STAMP)
	$(BIN)/ruff format lib tests bench tools
	$(BIN)/ruff check --fix lib tests bench tools

unit: $(STAMP)
	$(BIN)/pytest -q -m "not browser"

book-ci: _build/ci/html/index.html

site-test: book-ci
	SITE_DIR=$(CURDIR)/_build/ci/html $(BIN)/pytest -q -m browser tests/test_site.py

test: lint unit book-ci site-test
	@echo "make test: all checks passed"

bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

# the stored sweep results (_build/sweeps, hours of computation) survive `make clean`
clean:
	if [ -d _build ]; then find _build -mindepth 1 -maxdepth 1 ! -name sweeps -exec rm -rf {} +; fi
	rm -rf .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

clean-sweeps:
	rm -rf _build/sweeps

distclean: clean
	rm -rf $(VENV)
