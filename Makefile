# The README's two commands: `make demo` and `make test`. Each sets up .venv itself when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test quick-test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/hsijax demo

# Two worker processes, each taking whole test files (module fixtures are built once): on 2 cores the
# suite's compilation, child processes and I/O overlap (17 min in one process, 12 in two).
test: setup
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile -m "full or not full"

# The quick suite: unit and in-process tests (what a bare `pytest` runs).
quick-test: setup
	$(VENV)/bin/python -m pytest

# Benchmarks (not tests): PyTorch is the reference, installed here only, never a dependency. OpenBLAS
# picks its own kernel (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for these commands alone), and
# every report names the kernel that ran.
BENCH_PYTHON := env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ../$(VENV)/bin/python

bench: setup
	$(VENV)/bin/pip install --quiet torch==2.13.0
	cd benchmarks && $(BENCH_PYTHON) encode.py --json results/encode.json
	cd benchmarks && $(BENCH_PYTHON) encode_attempts.py --json results/encode_attempts.json
	cd benchmarks && $(BENCH_PYTHON) train.py --json results/train.json
	cd benchmarks && $(BENCH_PYTHON) pipeline.py --json results/pipeline.json
	cd benchmarks && $(BENCH_PYTHON) storage_formats.py --json results/storage_formats.json
	cd benchmarks && $(BENCH_PYTHON) fine_tune.py --json results/fine_tune.json
	cd benchmarks && $(BENCH_PYTHON) pretrain_devices.py --json results/pretrain_devices.json
	cd benchmarks && $(BENCH_PYTHON) import_shared.py --json results/import_shared.json
	cd benchmarks && $(BENCH_PYTHON) map_scene.py --json results/map_scene.json
	cd benchmarks && $(BENCH_PYTHON) report.py

clean:
	rm -rf $(VENV) hsijax_demo .pytest_cache .hypothesis
