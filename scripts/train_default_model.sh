#!/usr/bin/env bash
# The packaged default model (fornet_ros/weights/fornet_s_camvid.pt): the trainer's default recipe
# (fornet train --help) with K = 0.25, on every CamVid frame we have except drive 0006R0
# (train 0001TP + 0016E5 and val: 367 frames); 0006R0 stays the honest hold-out (validated on).
# One thread: it ran beside the two ablation lanes of scripts/train_camvid_ablations.sh.
set -euo pipefail
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid2/default}
FORNET=${FORNET:-.venv/bin/fornet}
ITERS=${ITERS:-1200}
mkdir -p "$OUT"
"$FORNET" train --dataset camvid --data-root "$DATA" --split train val --exclude-drives 0006R0 \
  --val-split train --val-drives 0006R0 --iters "$ITERS" --eval-every $((ITERS / 3)) --threads 1 --no-progress \
  --seed 0 --topk 0.25 --out "$OUT" > "$OUT/train.log" 2>&1
