# Everything a newcomer needs: `make demo` and `make test` set up the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint ui bench clean-state

$(BIN)/fairness-pipeline: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/fairness-pipeline
	$(BIN)/fairness-pipeline demo

test: $(BIN)/fairness-pipeline
	$(BIN)/ruff check fairness_pipeline fairness_pipeline_tests bench
	$(BIN)/pytest

ui: $(BIN)/fairness-pipeline
	$(BIN)/fairness-pipeline ui

bench: $(BIN)/fairness-pipeline
	$(BIN)/python bench/ingest.py

clean-state:
	-$(BIN)/fairness-pipeline db stop
	rm -rf .fairness
