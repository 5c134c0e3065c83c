# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CORE   := $(VENV)/.installed-core
DEV    := $(VENV)/.installed-dev

.PHONY: demo test lint bench data clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(CORE): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[all]'
	touch $@

# torch is the test oracle only: CI installs the CPU build (a local wheel on our machines).
$(DEV): $(CORE)
	$(PY) -m pip install -q -e '.[dev]' 'torch==2.13.0'
	touch $@

demo: $(CORE)
	$(PY) examples/xor_mlp.py

lint: $(DEV)
	$(VENV)/bin/ruff check src tests bench examples

test: lint
	$(PY) -m pytest -q

bench: $(DEV)
	$(PY) bench/autodiff.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
