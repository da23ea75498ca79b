# The two commands (see README.md):
#   make lab    -- install into .venv, open JupyterLab on the notebooks
#   make test   -- install into .venv, run the whole test suite (fast mode)
# Everything else is for people who edit the course.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Python 3.11 or 3.12 (utils/versions.py); the first of these found.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-install whenever either requirements list changes.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt tests/requirements.txt | cksum | cut -d' ' -f1)

export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONDONTWRITEBYTECODE := 1

# Two pytest workers (pytest-xdist), one file at a time each: a notebook's cells stay in one
# kernel, in order. Measured on these 2 cores: 589-693 s of tests with two workers (the
# machine's speed varies by a fifth from hour to hour); the last CI run without workers took
# 977 s with the install. Three workers gave no more
# (686 s): the suite is then CPU-bound. PYTEST_WORKERS=0
# runs everything in this process (for a debugger, or a machine short of memory). The
# notebooks, the longest files, are collected first so that no worker is left with one at the end.
PYTEST_WORKERS ?= 2
PYTEST_ARGS := notebooks tests utils tools --doctest-modules --nbval \
	--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600 --durations=30 \
	-n $(PYTEST_WORKERS) --dist loadfile

.PHONY: help install lab run test test-versions bench bench-music seeds labs fmt results check grade grade-selftest clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and install requirements (done by lab/test too)

$(STAMP): requirements.txt tests/requirements.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v <= (3, 12) else print(f"warning: Python {v[0]}.{v[1]}; the course is tested on 3.11 and 3.12") or 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r tests/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

lab: install  ## open JupyterLab on notebook 01 (trusts the shipped notebooks; works as root too)
	$(BIN)/python -m tools.lab $(LAB_ARGS)

run: install  ## execute every notebook in place (headless; LABS_FAST=1 writes to runs/fast/ instead)
	$(BIN)/python -m tools.notebooks run
	$(BIN)/python -m tools.labtool
	$(BIN)/python -m tools.results

test: install  ## the whole test suite: unit tests, doctests, checks, labs, nbval, the browser test (fast mode)
	LABS_FAST=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

VERSIONS ?= colab floor
test-versions:  ## run the notebooks (fast mode) in separate venvs with Colab's TensorFlow/Keras and the oldest supported
	bash .ci/test-versions $(VERSIONS)

bench: install  ## CNN training throughput, fit vs custom loop, as JSON (about 3 minutes)
	$(BIN)/python benchmarks/cnn_throughput.py --epochs 4

bench-music: install  ## the MIT lab's LSTM configuration given at least the music notebook's training time, as JSON (about 11 minutes)
	$(BIN)/python benchmarks/music.py --preset original --seconds 585

seeds: install  ## re-run notebooks 03-08 under three seeds; each figure's mean, spread, minimum (hours on a CPU)
	$(BIN)/python benchmarks/seeds.py notebooks/0[3-8]_*.ipynb --seeds 42 43 44 --json runs/seeds/seeds.json

labs: install  ## regenerate labs/ from notebooks/
	$(BIN)/python -m tools.labtool

fmt: install  ## put notebooks/ and labs/ in canonical form
	$(BIN)/python -m tools.notebooks fmt

results: install  ## rebuild docs/results.md from the stored notebooks (full-mode runs only)
	$(BIN)/python -m tools.results

check: install  ## quick consistency checks (no notebook execution)
	$(BIN)/python -m tools.notebooks fmt --check
	$(BIN)/python -m tools.labtool --check
	$(BIN)/python -m tools.results --check

grade: install  ## grade submitted labs: SUBMISSIONS="a.ipynb b.ipynb folder/" -> grades.json, grades.md (GRADE_ARGS: --lab, --jobs ...)
	$(BIN)/python -m tools.grade $(SUBMISSIONS) $(GRADE_ARGS)

grade-selftest: install  ## grade every lab's solved/odd-wrong/even-wrong fixtures, check each verdict, time it against executing the labs
	$(BIN)/python -m tools.grade_selftest $(GRADE_ARGS)

clean:  ## remove .venv and run artefacts
	rm -rf $(VENV) .venv-versions runs .pytest_cache
