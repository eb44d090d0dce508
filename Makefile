# Two commands set everything up on a fresh machine:
#   make run    restore the bundled examples with the embedded prior (writes out/)
#   make test   run the whole test suite
# Both create .venv on first use. On a GPU machine pick your torch build, e.g.
#   make run TORCH=torch

VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test test-fast lint bench bench-speed bench-doc model-card model-card-doc examples data train train-17 \
	train-doc gpu-prep train-m-gpu clean debs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	@# setuptools prints an informational "Editable installation" notice for the
	@# presets/ -> code_cli.presets_data mapping: nothing to act on, so silenced.
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install -q -e ".[bench,test]"
	touch $@

venv: $(VENV)/.installed

# Debian packages for printed pages: the fonts the document prior trains and is judged on, and
# Tesseract, the OCR engine that judges it (tests, bench-doc, train-doc). Installed when missing
# (needs root, as on this project's machines); elsewhere: apt-get install $(DOC_DEBS).
DOC_DEBS := tesseract-ocr tesseract-ocr-eng fonts-noto-core fonts-freefont-ttf fonts-crosextra-carlito \
	fonts-crosextra-caladea
$(VENV)/.debs: $(VENV)/.installed
	@missing=$$(for p in $(DOC_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	touch $@

debs: $(VENV)/.debs

run: $(VENV)/.installed
	$(VENV)/bin/code-restore examples/corrupted out --grid --overwrite
	$(VENV)/bin/code-restore examples/pages/corrupted out/pages --preset doc --grid --overwrite

test: $(VENV)/.debs
	$(VENV)/bin/ruff check .
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

test-fast: $(VENV)/.debs
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

# The measuring instrument: the held-out photographs of `make data` x 21 corruptions x every method
# (CODE presets, SDEdit twins, blind classical baselines); CSV, tables, plots and grids in bench-out/.
# On a GPU: make bench BENCH_FLAGS="--device cuda --dtype bfloat16". docs/benchmark.md names its own command.
bench: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench --out bench-out $(BENCH_FLAGS)

# A subset a CPU runs in minutes (3 photos at 64 px, 5 corruptions, CODE default and the baselines).
bench-quick: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench --quick --out bench-out/quick

# Seconds per image, calls per second and peak memory per dtype and batch size.
bench-speed: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench.speed --size 256 --batch 1 4 --dtype float32 bfloat16

# Printed pages in held-out fonts x 10 document degradations (and clean pages) x the classical
# clean-ups and the doc preset, read by Tesseract: docs/benchmark-doc.md names its own command.
bench-doc: $(VENV)/.debs
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench --domain doc --out bench-out/doc $(BENCH_FLAGS)

# Denoising and round-trip figures of the embedded prior on the 16 held-out photographs (needs `make data`).
model-card: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench.prior_eval --out code_cli/weights/code-prior-s

# The same figures for code-prior-doc, on held-out pages, beside code-prior-s.
model-card-doc: $(VENV)/.debs
	HF_HUB_OFFLINE=1 $(PY) -m code_cli.bench.prior_eval --model code-prior-doc --compare photo=code-prior-s \
		--pages 8 --curve code_cli/weights/code-prior-doc/curve.jsonl --out code_cli/weights/code-prior-doc

# Rebuilds examples/ from the held-out photographs (needs mate-backgrounds) and examples/pages/
# from a page in a held-out font.
examples: $(VENV)/.debs
	$(PY) -m code_cli.bench.make_examples examples
	$(PY) -m code_cli.bench --domain doc --examples examples/pages

# The training photographs (docs/data.md): apt-get download / pip download into
# data/photos/.cache, unpacked there, never installed (1.4 GB: 610 MB of packages,
# 400 MB of them enlightenment-data, and their unpacked files; the photographs
# themselves 146 MB); writes data/photos/manifest.json. Needs the network once;
# `python -m code_cli.prior.fetch --offline` rebuilds from the cache.
data: $(VENV)/.installed
	$(PY) -m code_cli.prior.fetch data/photos

# The shipped code-prior-s, three phases by step count on the train split of
# `make data` (352 photographs): uniform t; then half of each batch at t < 300;
# then a 600-step cool-down (cosine learning rate to 1/20, faster EMA). 89 minutes
# on an idle 2-core CPU. Resumes from runs/prior/checkpoint.pt when run again.
# Keep the machine otherwise idle: --minutes caps the wall time, and a shared
# CPU gets fewer steps into it.
train: $(VENV)/.installed
	$(PY) -m code_cli.prior.train --data data/photos --out runs/prior --max-steps 2166 --minutes 90
	$(PY) -m code_cli.prior.train --data data/photos --out runs/prior --max-steps 2952 --minutes 90 --low-t-fraction 0.5
	$(PY) -m code_cli.prior.train --data data/photos --out runs/prior --max-steps 3552 --minutes 130 --low-t-fraction 0.5 --lr-end 0.05 --ema-max 0.995
	$(PY) -m code_cli.prior.train --out runs/prior --export code_cli/weights/code-prior-s

# code-prior-doc: code-prior-s's network warm-started from code-prior-s and trained on 2,000 pages
# rendered from the training fonts and texts (code_cli/prior/pages.py), 64 px crops, half of each
# batch at t < 300, bfloat16 autocast where the CPU has bf16 instructions (AVX512-BF16 or AMX), float32
# elsewhere: on an AVX2-only CPU bf16 autocast ran 34 to 49 s per step against 3.2 in float32 (measured
# 2026-12-02). --minutes counts across sessions: the run resumes from
# runs/prior-doc/checkpoint.pt (committed, so a fresh clone continues it) and writes the held-out
# denoising curve to runs/prior-doc/curve.jsonl every 5 minutes. That constant-rate run is at
# 450 minutes; raise DOC_MINUTES to train it on. The shipped weights then get code-prior-s's
# finishing phase, a cool-down (learning rate decayed to 5% by a cosine, EMA 0.995) of
# DOC_COOL_MINUTES more, run on a copy in runs/prior-doc-cool (--branch-from), so that the
# constant-rate run stays resumable and can be cooled again from further on.
DOC_MINUTES ?= 450
DOC_COOL_MINUTES ?= 75
DOC_BF16 := $(shell grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null && echo --bf16)
DOC_TRAIN = $(PY) -m code_cli.prior.train --size doc --pages 2000 $(DOC_BF16) --channels-last
train-doc: $(VENV)/.debs
	$(DOC_TRAIN) --out runs/prior-doc --init code-prior-s --minutes $(DOC_MINUTES)
	$(DOC_TRAIN) --out runs/prior-doc-cool --branch-from runs/prior-doc \
		--minutes $$(($(DOC_MINUTES) + $(DOC_COOL_MINUTES))) --lr-end 0.05 --ema-max 0.995
	$(PY) -m code_cli.prior.train --out runs/prior-doc-cool --export code_cli/weights/code-prior-doc --fp16
	cp runs/prior-doc-cool/curve.jsonl code_cli/weights/code-prior-doc/curve.jsonl

# The same three phases on code-prior-s's first 17 photographs (the weights shipped
# until 2026-11-27), into runs/code-prior-s-17, for comparisons.
train-17: $(VENV)/.installed
	$(PY) -m code_cli.prior.train --out runs/prior-17 --max-steps 2166 --minutes 90
	$(PY) -m code_cli.prior.train --out runs/prior-17 --max-steps 2952 --minutes 90 --low-t-fraction 0.5
	$(PY) -m code_cli.prior.train --out runs/prior-17 --max-steps 3552 --minutes 130 --low-t-fraction 0.5 --lr-end 0.05 --ema-max 0.995
	$(PY) -m code_cli.prior.train --out runs/prior-17 --export runs/code-prior-s-17

# code-prior-m on one GPU, in one device call. Here, after `make data`, once:
#   make gpu-prep    the train split capped at 1024 px (data/pack, about 26 MB) and
#                    the wheels the device image lacks (data/wheels: diffusers and
#                    importlib_metadata); both travel as carried paths.
# Then the run tool: command `bash code_cli/prior/train_m_gpu.sh` (or
# `make train-m-gpu`), carry ["data/pack", "data/wheels"], timeout_s 600: 7.5
# minutes of training, fp16 shards of < 14 MB, train.log and meta.tar in $OUT.
# Back here: .venv/bin/python -m code_cli.prior.device unbundle FILES_AT code_cli/weights/code-prior-m
DIFFUSERS ?= diffusers==0.42.1
gpu-prep: $(VENV)/.installed
	$(PY) -m code_cli.prior.device pack data/photos data/pack
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux2014_x86_64 -d data/wheels "$(DIFFUSERS)" importlib_metadata

# Runs on the device machine (its python3 has torch; nothing here uses .venv).
train-m-gpu:
	bash code_cli/prior/train_m_gpu.sh

clean:
	rm -rf out bench-out .pytest_cache
