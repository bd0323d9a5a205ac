# The first two commands on a fresh machine: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PY := $(VENV)/bin/python
# 2 cores here: pytest runs the tests in two processes (pytest-xdist); Drake and torch each use one thread
# per process.
export OMP_NUM_THREADS ?= 1

.PHONY: demo test test-all bench gpu-check venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cotrain demo

test: $(STAMP)
	$(PY) -m pytest -n 2

test-all: $(STAMP)
	$(PY) -m pytest -n 2 -m ""

bench: $(STAMP)
	@for f in benchmarks/*.py; do \
	  case $$f in *annotate_k_draws.py|*annotate_speed.py|*eval_overhead.py|*fold0.py) \
	    echo "== $$f: needs data or a checkpoint (or is a helper), see its docstring and docs/results/speed.md"; continue;; esac; \
	  echo "== $$f"; $(PY) $$f || exit 1; done

# On a machine with a CUDA device: CUDA tests, train-speed and sampler rows, a tiny study on cuda, one table
# (gpu_check/gpu_check.md). Without one it is a dry run that lists the steps.
gpu-check: $(STAMP)
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
