# The README's two commands: `make demo` and `make test`. Each sets up .venv itself when needed.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean

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

clean:
	rm -rf $(VENV) hsijax_demo .pytest_cache .hypothesis
