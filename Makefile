# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Installed before the project so that pip never resolves torch itself. On the project's
# build machines this exact version is a local CPU wheel; elsewhere it comes from PyPI
# (override with e.g. `make TORCH_SPEC=torch test`).
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	touch $@

# Installing ends by compiling the numba kernels into the cache every command reads
# (python -m lstm_madness.cli.warm: about 25 s once), so that no run waits for them.
$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e .
	$(BIN)/python -m lstm_madness.cli.warm
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m lstm_madness.cli.warm
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/madness demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) madness.db report build *.egg-info src/*.egg-info
