#!/usr/bin/env bash
# The packaged default model (fornet_ros/weights/fornet_s_camvid.pt): the K=0.25 recipe of
# scripts/train_camvid_ablations.sh, trained longer (3000 iterations), same 0006R0 hold-out.
set -euo pipefail
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid/default_k0.25_3000}
FORNET=${FORNET:-.venv/bin/fornet}
mkdir -p "$OUT"
"$FORNET" train --dataset camvid --data-root "$DATA" --exclude-drives 0006R0 --val-drives 0006R0 \
  --iters 3000 --eval-every 1000 --batch-size 8 --crop 352 480 --scale 0.75 1.5 \
  --lr 4e-3 --weight-decay 1e-2 --warmup 50 --threads 1 --no-progress --seed 0 --topk 0.25 \
  --out "$OUT" > "$OUT/train.log" 2>&1
