# emovox — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.emovox-installed
DATA ?= ../shared/data/ravdess
# ffmpeg decodes m4a/aac/webm (and the codec round trips); chromium is only for the browser
# test of `make test` (tests/integration/test_browser.py)
APT_PACKAGES := ffmpeg
TEST_APT_PACKAGES := chromium
# PyTorch's CPU wheel index where plain pip would fetch the CUDA build (README, Quick start)
TORCH_INDEX ?=
# installs the Debian packages named in $(1) that are missing; $(2): what goes without them
define apt_install
	@missing=""; for p in $(1); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null ) \
	    || echo "warning: could not install$$missing ($(2)); install it by hand: sudo apt-get install$$missing"; \
	fi
endef

.PHONY: help setup demo demo-eval test lint bench clean
.DEFAULT_GOAL := help

help:
	@echo "make demo       the bundled model answers 8 RAVDESS clips, or without $(DATA)"
	@echo "                the 2 synthetic clips of examples/ (creates .venv first)"
	@echo "make test       lint, import contracts and the test suite"
	@echo "make demo-eval  a 2-fold speaker-independent baseline on RAVDESS"
	@echo "make setup      only create .venv and install; make clean removes it"
	@echo "then: .venv/bin/emovox --help (or: source .venv/bin/activate; emovox --help)"

setup: $(STAMP)

# $(PY) as a prerequisite: a .venv whose python is gone is set up again (it failed at once)
$(PY):

$(STAMP): pyproject.toml Makefile $(PY)
	$(call apt_install,$(APT_PACKAGES),m4a/aac/webm decoding will be unavailable)
	@test -n "$(PYTHON)" || { echo "error: no python3 found: install Python 3.11 (Debian: sudo apt-get install python3 python3-venv)"; exit 1; }
	@# a working .venv without pip (uv venv makes them) gets pip, not deleted (stop 48)
	@if test -x $(PY) && ! $(PY) -m pip --version >/dev/null 2>&1; then \
	  $(PY) -m ensurepip --upgrade >/dev/null 2>&1 || true; fi
	@if ! { test -x $(PY) && $(PY) -m pip --version >/dev/null 2>&1; }; then \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "error: $(PYTHON) cannot create a virtual environment: install its venv module (Debian: sudo apt-get install python3-venv), then run make again"; exit 1; }; \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev]"
	@echo "warming librosa's numba cache"
	$(PY) -c "import numpy as np; from emovox.features import FEATURES, extract; \
	  y = np.random.default_rng(0).standard_normal(16000).astype('float32') * 0.1; \
	  [extract(n, y, 16000) for n in FEATURES]"
	touch $(STAMP)

# The main job: the bundled model predicts the 8 untouched 48 kHz RAVDESS originals
# (or, without ../shared, the clips shipped in the repo), offline; --truth shows the label
# of each RAVDESS name beside the answer (these actors are training actors of the model).
DEMO_CLIPS := $(wildcard $(DATA)/original-48k/*.wav)
DEMO_TRUTH := --truth
ifeq ($(DEMO_CLIPS),)
DEMO_CLIPS := $(wildcard examples/*.wav)
DEMO_TRUTH :=
endif

demo: $(STAMP)
ifeq ($(wildcard $(DATA)/original-48k/*.wav),)
	@echo "note: $(DATA)/original-48k/ not found: the demo answers the two synthetic clips in examples/ (machine speech: see examples/README.md); make demo DATA=/path/to/ravdess uses the RAVDESS originals"
endif
	$(VENV)/bin/emovox predict $(DEMO_CLIPS) --top 3 $(DEMO_TRUTH)

# Cross-validated baseline on two speaker-independent folds (the former demo).
demo-eval: $(STAMP)
	$(VENV)/bin/emovox evaluate --data $(DATA)/Audio_Speech_Actors_01-24 --protocol emobox \
	  --model egemaps_logreg --folds 0,1 --out runs/demo

# lint first: ruff, then the import contracts of pyproject.toml ([tool.importlinter])
test: lint
	$(call apt_install,$(TEST_APT_PACKAGES),the browser test will be skipped)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports --no-logo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
