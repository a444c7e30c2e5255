#!/usr/bin/env bash
# Stage 2 of the shipped default's training: continue a finished run of
# scripts/train_pretrained_ablation.sh (stage 1: 400 iterations from ImageNet weights) for ITERS more
# iterations on the same data (CamVid train+val WITHOUT drive 0006R0) with a fresh, lower warm-up +
# poly schedule (a warm restart), then score the final weights on 0006R0.
# usage: ITERS=350 scripts/train_pretrained_default.sh RUN [DATA_ROOT] [OUT]
#   e.g. scripts/train_pretrained_default.sh runs/pretrained/mnv2_sparse_k1_s0
set -euo pipefail
RUN=$1
DATA=${2:-../shared/data/camvid}
OUT=${3:-${RUN}_cont}
ITERS=${ITERS:-350}
FORNET=${FORNET:-.venv/bin/fornet}
OMP_NUM_THREADS=${THREADS:-1} "$FORNET" train --init "$RUN/last.pt" --data-root "$DATA" --split train val \
  --exclude-drives 0006R0 --val-split train --val-drives 0006R0 --iters "$ITERS" --eval-every "$ITERS" \
  --lr 5e-4 --warmup 10 --dice 1 --seed 1 --threads "${THREADS:-1}" --out "$OUT" --no-progress
