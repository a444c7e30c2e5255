#!/usr/bin/env bash
# The CamVid training runs behind docs/benchmarks.md (same recipe and budget for every ablation).
# Hold-out: the whole 0006R0 drive (101 frames) is left out of training and used for validation,
# since CamVid val sits between train frames (shared/data/camvid/SOURCE.md).
# Two lanes of one thread each on a 2-core CPU; usage: scripts/train_camvid_ablations.sh [DATA_ROOT] [OUT]
set -euo pipefail
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid}
FORNET=${FORNET:-.venv/bin/fornet}
ITERS=${ITERS:-900}
common=(train --dataset camvid --data-root "$DATA" --exclude-drives 0006R0 --val-drives 0006R0
        --iters "$ITERS" --eval-every 300 --batch-size 8 --crop 352 480 --scale 0.75 1.5
        --lr 4e-3 --weight-decay 1e-2 --warmup 50 --threads 1 --no-progress --seed 0)
run() { name=$1; shift; mkdir -p "$OUT/$name"; "$FORNET" "${common[@]}" --out "$OUT/$name" "$@" > "$OUT/$name/train.log" 2>&1; }
( run k0.25 --topk 0.25; run k0.50 --topk 0.5; run k1.00 --topk 1.0 ) &
( run focus_off --no-focus; run k0.10 --topk 0.1 ) &
wait
