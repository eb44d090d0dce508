#!/usr/bin/env bash
# code-prior-m in one device call (issue 13). The device image's python3 has torch
# but not diffusers: its wheels travel in data/wheels, the photographs in
# data/pack (both made here by `make gpu-prep`). The run tool's call:
#   command: bash code_cli/prior/train_m_gpu.sh     carry: ["data/pack", "data/wheels"]     timeout_s: 600
# It brings back in $OUT: train.log, meta.tar and the fp16 weight shards (< 14 MB each).
# GPU_MINUTES is the training wall clock after loading (about 30 s) and before the
# export (seconds): 7.5 leaves a 9-minute call room. GPU_FLAGS=--compile tries torch.compile.
set -euo pipefail
: "${OUT:?set OUT to the folder whose files come back}"
GPU_MINUTES="${GPU_MINUTES:-7.5}"
RUN="${RUN:-runs/prior-m}"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site data/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/train.log"
# shellcheck disable=SC2086  # GPU_FLAGS is a list of flags
python3 -m code_cli.prior.train --size m --device cuda --data data/pack --out "$RUN" \
    --minutes "$GPU_MINUTES" --low-t-fraction 0.5 --lr-end 0.05 ${GPU_FLAGS:-} 2>&1 | tee -a "$OUT/train.log"
python3 -m code_cli.prior.train --out "$RUN" --export runs/code-prior-m --fp16 --max-shard-mb 14
python3 -m code_cli.prior.device bundle runs/code-prior-m "$OUT"
