#!/usr/bin/env bash
# Reproduce the packaged default (fornet_mnv2_streets.pt) from the packaged `camvid` model:
#   bash scripts/train_streets.sh DATA_DIR OUT_DIR
# DATA_DIR as written by scripts/prepare_datasets.py, plus camvid/ (SegNet layout). Eight stages:
# recipes/streets.yaml (1200 iterations from `camvid`), recipes/streets_long.yaml (1800 more, lower
# learning rate, repeat-factor sampling), the same recipe for 800 more at lr 5e-4, for 3200 more
# at lr 7e-4, for 1800 more at lr 6e-4, for 1500 more at lr 5e-4, 4e-4 and 3e-4; then the mean of the
# last three stages' weights (scripts/average_checkpoints.py). The default is OUT_DIR/fornet_mnv2_streets.pt (the average, input 448x896).
# On the 2-core CPU: about 55 + 65 + 27 + 105 + 60 + 50 + 50 + 50 minutes. EXTRA: more `fornet train` options for every stage, e.g.
# EXTRA="--threads 2 --workers 1 --no-progress"; a stage cut short continues with EXTRA=--resume.
set -euo pipefail
data=$1 out=$2
fornet() { "$(dirname "$0")/../.venv/bin/python" -m fornet_ros.cli "$@"; }  # this checkout's code
fornet train --recipe "$(dirname "$0")/../recipes/streets.yaml" --data-dir "$data" --out "$out/streets" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets/last.pt" \
  --out "$out/streets_long" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets_long/last.pt" \
  --iters 800 --lr 5e-4 --warmup 20 --seed 2 --eval-every 400 --out "$out/streets_s3" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets_s3/last.pt" \
  --iters 3200 --lr 7e-4 --warmup 30 --seed 3 --eval-every 800 --out "$out/streets_s4" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets_s4/last.pt" \
  --iters 1800 --lr 6e-4 --warmup 30 --seed 5 --eval-every 600 --out "$out/streets_s5" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets_s5/last.pt" \
  --iters 1500 --lr 5e-4 --warmup 30 --seed 6 --eval-every 500 --out "$out/streets_s6" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets_s6/last.pt" \
  --iters 1500 --lr 4e-4 --warmup 30 --seed 7 --eval-every 500 --out "$out/streets_s7" ${EXTRA:-}
fornet train --recipe "$(dirname "$0")/../recipes/streets_long.yaml" --data-dir "$data" --init "$out/streets_s7/last.pt" \
  --iters 1500 --lr 3e-4 --warmup 30 --seed 8 --eval-every 500 --out "$out/streets_s8" ${EXTRA:-}
"$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/average_checkpoints.py" "$out/streets_s6/last.pt" \
  "$out/streets_s7/last.pt" "$out/streets_s8/last.pt" --out "$out/streets_avg678.pt"
"$(dirname "$0")/../.venv/bin/python" "$(dirname "$0")/package_model.py" "$out/streets_avg678.pt" --input-size 448 896 \
  --out "$out/fornet_mnv2_streets.pt" --why "2:1 cameras: the input-size sweep in docs/model_card.md"
