# Two commands set everything up on a fresh machine:
#   make run    restore the bundled examples with the embedded prior (writes out/)
#   make test   run the whole test suite
# Both create .venv on first use. On a GPU machine pick your torch build, e.g.
#   make run TORCH=torch

VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test test-fast bench bench-speed model-card examples train clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[bench,test]"
	touch $@

venv: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/code-restore examples/corrupted out --grid --overwrite

test: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

# Restores the examples with every compared method at equal budgets; prints and writes tables.
bench: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench examples --out bench-out

# Seconds per image, calls per second and peak memory per dtype and batch size.
bench-speed: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench.speed --size 256 --batch 1 4 --dtype float32 bfloat16

# Denoising and round-trip figures of the embedded prior (needs: apt-get install mate-backgrounds).
model-card: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench.prior_eval --out code_cli/weights/code-prior-s

# Rebuilds examples/ from the held-out photographs (needs mate-backgrounds).
examples: $(VENV)/.installed
	$(PY) -m code_cli.bench.make_examples examples

# About 90 minutes on 2 cores (needs mate-backgrounds); resumes from
# runs/prior/checkpoint.pt when run again. Keep the machine otherwise idle:
# a shared CPU gets fewer steps into the same budget.
train: $(VENV)/.installed
	$(PY) -m code_cli.train --out runs/prior --minutes 88
	$(PY) -m code_cli.train --out runs/prior --export code_cli/weights/code-prior-s

clean:
	rm -rf out bench-out .pytest_cache
