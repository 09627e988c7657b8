# emovox — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.emovox-installed
DATA ?= ../shared/data/ravdess
APT_PACKAGES := ffmpeg chromium
# PyTorch's CPU wheel index where plain pip would fetch the CUDA build (README, Quick start)
TORCH_INDEX ?=

.PHONY: setup demo demo-eval test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null ) \
	    || echo "warning: could not install$$missing; m4a/aac decoding will be unavailable"; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
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
ifeq ($(DEMO_CLIPS),)
DEMO_CLIPS := $(wildcard examples/*.wav)
endif

demo: $(STAMP)
	$(VENV)/bin/emovox predict $(DEMO_CLIPS) --top 3 --truth

# Cross-validated baseline on two speaker-independent folds (the former demo).
demo-eval: $(STAMP)
	$(VENV)/bin/emovox evaluate --data $(DATA)/Audio_Speech_Actors_01-24 --protocol emobox \
	  --model egemaps_logreg --folds 0,1 --out runs/demo

# lint first: ruff, then the import contracts of pyproject.toml ([tool.importlinter])
test: lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports --no-logo

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
