# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-all demo bench clean

setup: $(STAMP)

# Re-installs only when pyproject.toml changes, so a second `make setup` is instant.
$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Two workers (pytest-xdist), a test file per worker so module fixtures share their compiled programs.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

# Also the tests marked slow (heavier variants of tests in the default suite; minutes more on 2 cores), with
# XLA's fusion emitters as users have them (their batch == single tests are bit for bit; see tests/conftest.py).
test-all: setup
	JAXDEBLUR_TEST_XLA_FLAGS=--xla_backend_optimization_level=0 $(BIN)/python -m pytest -q -n 2 --dist loadfile --runslow $(PYTEST_ARGS)

demo: setup
	$(BIN)/jaxdeblur demo --out demo_output --overwrite

bench: setup
	$(BIN)/python -m experiments.bench_blur

clean:
	rm -rf $(VENV) demo_output .pytest_cache
