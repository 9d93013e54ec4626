# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install Inspector, run the demo on the embedded model
#   make test   - create .venv, install Inspector with test tools, run lint and tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU wheels of this exact pair are what the project is tested with.
	$(BIN)/pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/inspector demo

lint: $(STAMP)
	$(BIN)/ruff check inspector tests benchmarks packaging
	$(BIN)/ruff format --check inspector tests benchmarks packaging
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_prompts.py

clean:
	rm -rf $(VENV)
