# Set-up is two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck clean

# torch is installed first and pinned: an unpinned torch would pull several GB of CUDA packages.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

# Compile every diagram in diagrams/ into build/ and say what each became.
run: $(VENV)/.installed
	@mkdir -p build
	@for f in diagrams/*.fdg; do $(BIN)/fdg check $$f && $(BIN)/fdg compile $$f -o build/ || exit 1; done

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache .hypothesis
