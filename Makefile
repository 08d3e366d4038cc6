# reasonlab: `make study` runs the default study, `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1

.PHONY: install test test-fast study clean

install: $(STAMP)

# Exact versions come from requirements.lock; torch==2.13.0 is pinned there so pip takes the
# CPU wheel on this kind of machine instead of downloading a CUDA build.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: install
	WANDB_MODE=disabled $(PY) -m pytest tests

# The fast tier, for while working: everything but the tests marked slow (subprocess runs, resume,
# sweeps, the study, benchmarks); `make test` still runs them all.
test-fast: install
	WANDB_MODE=disabled $(PY) -m pytest tests -m "not slow"

# SEEDS=3: a base and every method per seed 0..2 (intervals over training noise too)
study: install
	$(PY) -m reasonlab.study $(if $(SEEDS),seeds=$(SEEDS))

clean:
	rm -rf outputs multirun
