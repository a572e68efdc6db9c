# nseos: `make demo` runs the main job, `make test` the whole test suite.
# Both create .venv on first use with a Python >= 3.12 found by scripts/find_python.sh.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
export JAX_PLATFORMS ?= cpu

.PHONY: demo test test-fast bench lint clean

$(STAMP): pyproject.toml
	@PYTHON=$$(scripts/find_python.sh) && echo "using $$PYTHON" && \
	  { [ -x $(PY) ] || $$PYTHON -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/nseos demo --out nseos-demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

bench: $(BENCH_STAMP)
	$(PY) benchmarks/tov.py
	$(PY) benchmarks/likelihood.py
	$(PY) benchmarks/bayes.py
	$(PY) benchmarks/replica.py
	$(PY) benchmarks/toy.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests examples benchmarks
	$(VENV)/bin/ruff format --check src tests examples benchmarks

clean:
	rm -rf $(VENV) results .pytest_cache
