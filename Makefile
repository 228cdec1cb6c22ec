# Set-up is two commands: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint typecheck clean

# torch is installed first and pinned: an unpinned torch would pull several GB of CUDA packages.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0

# After installing, the native CPU kernels are compiled once (cached; skipped with a message where no C++ compiler
# is found: fdg then runs its pure-torch lowerings).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -c 'from fdg.runtime import native; print(native.status())'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -c 'from fdg.runtime import native; print(native.status())'
	touch $@ $(VENV)/.installed

# Compile every diagram in diagrams/ into build/NAME.py, draw it as build/NAME.svg, write its cost report to
# build/reports/NAME.txt; print one row per diagram.
run: $(VENV)/.installed
	@$(BIN)/fdg build diagrams/*.fdg -o build

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest

clean:
	rm -rf build .mypy_cache .ruff_cache .pytest_cache .hypothesis

# Benchmarks: fdg side by side with e3nn 0.6 and cuEquivariance's pure-PyTorch path (the optional extra `bench`).
.PHONY: bench venv-mace bench-mace
$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@ $(VENV)/.installed

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/conv.py
	$(BIN)/python benchmarks/conv.py --lmax 3
	$(BIN)/python benchmarks/node.py

# MACE pins e3nn 0.4.4, so it gets its own environment, kept out of git and of `make test`.
MACE_VENV := .venv-mace
$(MACE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(MACE_VENV)
	$(MACE_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(MACE_VENV)/bin/python -m pip install --quiet mace-torch==0.3.16 -e .
	touch $@

venv-mace: $(MACE_VENV)/.installed

bench-mace: $(MACE_VENV)/.installed
	$(MACE_VENV)/bin/python benchmarks/power.py

# tests_mace/: fdg's power spans exactly MACE's SymmetricContraction, with fewer weights (kept out of `make test`)
.PHONY: test-mace
$(MACE_VENV)/.installed-test: $(MACE_VENV)/.installed
	$(MACE_VENV)/bin/python -m pip install --quiet pytest
	touch $@

test-mace: $(MACE_VENV)/.installed-test
	TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 $(MACE_VENV)/bin/python -m pytest tests_mace -q -p no:cacheprovider -p no:warnings

# docs/results.md: GFN2-xTB ethanol data (if missing), MACE and MACE+fusion trained with torchrun (2 processes), the table.
.PHONY: results
$(VENV)/.installed-train: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[train]'
	touch $@ $(VENV)/.installed

results: $(VENV)/.installed-train
	$(BIN)/python -m training.results

# nequip 0.19 wants lightning and hydra, so it gets its own environment too, kept out of git and of `make test`;
# tests_nequip/: diagrams/nequip_interaction.fdg against nequip's own ConvNetLayer.
.PHONY: venv-nequip test-nequip
NEQUIP_VENV := .venv-nequip
$(NEQUIP_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(NEQUIP_VENV)
	$(NEQUIP_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(NEQUIP_VENV)/bin/python -m pip install --quiet nequip==0.19.1 pytest -e .
	touch $@

venv-nequip: $(NEQUIP_VENV)/.installed

test-nequip: $(NEQUIP_VENV)/.installed
	$(NEQUIP_VENV)/bin/python -m pytest tests_nequip -q -p no:cacheprovider -p no:warnings
