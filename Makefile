# The README's two commands: `make demo` and `make test`. Each sets up .venv itself when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/hsijax demo

test: setup
	$(VENV)/bin/python -m pytest

# Benchmarks (not tests): PyTorch is the reference, installed here only, never a dependency.
bench: setup
	$(VENV)/bin/pip install --quiet torch==2.13.0
	cd benchmarks && ../$(VENV)/bin/python encode.py --json results/encode.json
	cd benchmarks && ../$(VENV)/bin/python encode_attempts.py --json results/encode_attempts.json
	cd benchmarks && ../$(VENV)/bin/python train.py --json results/train.json
	cd benchmarks && ../$(VENV)/bin/python pipeline.py --json results/pipeline.json
	cd benchmarks && ../$(VENV)/bin/python fine_tune.py --json results/fine_tune.json
	cd benchmarks && ../$(VENV)/bin/python report.py

clean:
	rm -rf $(VENV) hsijax_demo .pytest_cache .hypothesis
