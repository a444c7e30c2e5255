#!/usr/bin/env bash
# Seed check for the ablation: focus off vs K=0.25 with seed 1 (the recipe of
# scripts/train_camvid_ablations.sh, which used seed 0). Two lanes of one thread each.
set -euo pipefail
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid}
FORNET=${FORNET:-.venv/bin/fornet}
common=(train --dataset camvid --data-root "$DATA" --exclude-drives 0006R0 --val-drives 0006R0
        --iters 900 --eval-every 900 --batch-size 8 --crop 352 480 --scale 0.75 1.5
        --lr 4e-3 --weight-decay 1e-2 --warmup 50 --threads 1 --no-progress --seed 1)
run() { name=$1; shift; mkdir -p "$OUT/$name"; "$FORNET" "${common[@]}" --out "$OUT/$name" "$@" > "$OUT/$name/train.log" 2>&1; }
run focus_off_seed1 --no-focus &
run k0.25_seed1 --topk 0.25 &
wait
