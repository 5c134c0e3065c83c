# The README's two commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CORE   := $(VENV)/.installed-core
DEV    := $(VENV)/.installed-dev

.PHONY: demo test lint bench data clean test-gpu

$(PY):
	$(PYTHON) -m venv $(VENV)

$(CORE): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[all]'
	touch $@

# torch is the test oracle only: CI installs the CPU build (a local wheel on our machines).
# The distributed tests need Open MPI (mpirun, and its headers for mpi4py), the dashboard's
# browser test a headless Chromium: Debian's packages, installed here as root with apt-get;
# elsewhere install them yourself (the tests then stop with one message naming what is missing).
TEST_PACKAGES = openmpi-bin libopenmpi-dev chromium
TEST_PROGRAMS = mpirun chromium
$(DEV): $(CORE)
	@for prog in $(TEST_PROGRAMS); do command -v $$prog >/dev/null 2>&1 || missing=1; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "test: installing $(TEST_PACKAGES)"; \
	  apt-cache show $(TEST_PACKAGES) >/dev/null 2>&1 || apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES) >/dev/null; \
	fi
	$(PY) -m pip install -q -e '.[dev]' 'torch==2.13.0'
	touch $@

# Fashion-MNIST for the demo, best source first: already there (any data folder); Debian's
# dataset-fashion-mnist (as root with apt-get); a verified download into ~/.cache/filterbank;
# failing all three, `filterbank train` falls back to the embedded 6,000-image sample.
FMNIST_FOUND = $(PY) -c "import sys; from filterbank.data.datasets import FashionMNIST as F; \
	sys.exit(not (F.find(None, True) and F.find(None, False)))"

data: $(CORE)
	@if $(FMNIST_FOUND); then \
	  echo "data: Fashion-MNIST is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "data: installing Debian's dataset-fashion-mnist"; \
	  apt-cache show dataset-fashion-mnist >/dev/null 2>&1 || apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist || true; \
	fi
	@$(FMNIST_FOUND) || { echo "data: downloading Fashion-MNIST"; \
	  $(VENV)/bin/filterbank datasets --download fashion-mnist >/dev/null; } || \
	  echo "data: WARNING: could not install or download Fashion-MNIST; the demo trains on" \
	       "the embedded sample (6,000 images) instead, which does not reach 90%"

# A small CNN on the full Fashion-MNIST: >= 90% test accuracy in a few minutes on 2 cores.
DEMO_ARGS ?= --model simple_cnn --dataset fashion-mnist --epochs 3 --batch-size 128 \
	--optimizer adam --lr 0.002 --schedule onecycle --val-split 0.05
demo: data
	$(VENV)/bin/filterbank train $(DEMO_ARGS)

lint: $(DEV)
	$(VENV)/bin/ruff check src tests bench examples

test: lint
	FILTERBANK_REQUIRE_ORACLES=1 $(PY) -m pytest -q

# Every benchmark against PyTorch (autodiff, layers, conv_algos, train, scaling, footprint): one summary
# table; JSON + PNG per benchmark in bench/results/. BENCH_ARGS=--quick for a short run,
# BENCH_ARGS=--fashion to add the Fashion-MNIST training race (needs the full data set).
BENCH_ARGS ?=
bench: $(DEV)
	$(PY) bench/run_all.py $(BENCH_ARGS)

# On a machine with an NVIDIA GPU and CuPy (no venv there: the system python3 with numpy,
# safetensors, tqdm, pytest, cupy and torch): the GPU tests, then the ResNet-18 CUDA benchmark
# (bench/results/gpu_resnet.json). About 5 minutes on one H100.
test-gpu:
	PYTHONPATH=src python3 -m pytest -q tests/gpu
	PYTHONPATH=src python3 bench/gpu_resnet.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
