# Every target builds .venv from scratch on a fresh machine (Python 3.10 or newer + pip only; CI runs 3.11).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The tested CPU build; an unpinned torch would pull several GB of CUDA packages.
TORCH  := torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: venv test demo bench docs lint check-install mutation clean test-ray

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]" "$(TORCH)"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(PY) examples/world_model_mpc.py --timesteps 3000 --out runs/demo

bench: $(STAMP)
	$(PY) benchmarks/env_speed.py

# The documentation site (Sphinx + furo + MyST) with every warning an error; pages of the envs
# and the CLI are generated from the code at build time.
docs: $(STAMP)
	rm -rf docs/_build docs/_generated
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# The documented installs, each in a fresh virtual environment: ".[sb3]" runs the CLI and the demo,
# "." alone runs every environment through the checkers (no torch, no SB3).
check-install:
	bash .ci/check_install.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check gym_advrl sb3_ext tests benchmarks examples docs .ci
	$(VENV)/bin/ruff format --check gym_advrl sb3_ext tests benchmarks examples docs .ci

# Mutation testing of the algorithm and env modules (hours on 2 cores; results are kept in
# .mutation/ so a rerun re-tests only what changed). MODULES="sb3_ext/per" narrows it, and
# TESTS="tests/test_per.py tests/test_td.py" runs only those tests (a lower bound on the kill rate).
mutation: $(STAMP)
	$(PY) tests/mutation.py $(MODULES) $(if $(TESTS),--tests $(TESTS))

# The Ray path (RLlib, `advrl tune`) in its own venv: Ray pins an older gymnasium than .venv keeps.
# tests/ray/ starts local Ray processes on 127.0.0.1 only and shuts them down after each test.
RAY_VENV  := .venv-ray
RAY_PY    := $(RAY_VENV)/bin/python
RAY_STAMP := $(RAY_VENV)/.installed

$(RAY_STAMP): pyproject.toml
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_PY) -m pip install --upgrade pip
	$(RAY_PY) -m pip install "$(TORCH)"
	$(RAY_PY) -m pip install -e ".[ray,sb3]" "pytest>=8" "hypothesis>=6" "$(TORCH)"
	touch $(RAY_STAMP)

test-ray: $(RAY_STAMP)
	RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_UV_RUN_RUNTIME_ENV=0 $(RAY_PY) -m pytest -q -p no:cacheprovider tests/ray

clean:
	rm -rf $(VENV) $(RAY_VENV) build *.egg-info .pytest_cache docs/_build docs/_generated .mutation .mutation-* mutants
