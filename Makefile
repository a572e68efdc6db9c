# nseos: `make demo` runs the main job, `make test` the whole test suite.
# Both create .venv on first use with a Python >= 3.12 found by scripts/find_python.sh, and
# install the pinned versions of constraints.txt (`make test-latest` tries the newest ones).
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
LATEST := .venv-latest
PIN := --constraint constraints.txt
export JAX_PLATFORMS ?= cpu

.PHONY: demo test test-fast test-latest lock bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@PYTHON=$$(scripts/find_python.sh) && echo "using $$PYTHON" && \
	  { [ -x $(PY) ] || $$PYTHON -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIN) -e '.[dev]'
	@touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet $(PIN) -e '.[dev,bench]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/nseos demo --out nseos-demo --overwrite

test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

# The newest releases, unpinned, in their own environment: run it before `make lock`.
test-latest:
	@PYTHON=$$(scripts/find_python.sh) && rm -rf $(LATEST) && $$PYTHON -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade -e '.[dev,bench]'
	$(LATEST)/bin/python -m pytest -n 2 --durations=15

# Rewrite constraints.txt from the environment that `make test-latest` just tested green.
lock:
	@test -x $(LATEST)/bin/python || { echo "run 'make test-latest' first" >&2; exit 1; }
	{ sed -n '1,3p' constraints.txt; $(LATEST)/bin/python -m pip freeze --exclude-editable \
	  | grep -v '^-e'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

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
	rm -rf $(VENV) $(LATEST) results .pytest_cache
