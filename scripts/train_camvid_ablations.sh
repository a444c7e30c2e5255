#!/usr/bin/env bash
# The CamVid ablation runs behind docs/benchmarks.md (issue #9): the trainer's default recipe
# (fornet train --help: batch 8, crops 352x480 at scale 0.75-1.5, AdamW 4e-3 / wd 1e-2, poly LR,
# 50 warm-up steps, OHEM + aux + selector losses) and the same budget for every run.
# Hold-out: the whole 0006R0 drive (101 frames) is left out of training and validated on,
# since CamVid val sits between train frames (shared/data/camvid/SOURCE.md).
# Two lanes of one thread each on a 2-core CPU.
# usage: ITERS=500 scripts/train_camvid_ablations.sh [DATA_ROOT] [OUT] [LANE_A_RUNS] [LANE_B_RUNS]
#   a run is NAME:ARGS, e.g. "k0.25_s0:--topk 0.25 --seed 0"
set -euo pipefail
DATA=${1:-../shared/data/camvid}
OUT=${2:-runs/camvid2}
FORNET=${FORNET:-.venv/bin/fornet}
ITERS=${ITERS:-500}
LANE_A=${3:-"k0.25_s0:--topk 0.25 --seed 0;focus_off_s0:--no-focus --seed 0;k1.00_s0:--topk 1.0 --seed 0"}
LANE_B=${4:-"ddrnet_s0:--variant ddrnet23_slim --seed 0;k0.25_s1:--topk 0.25 --seed 1;focus_off_s1:--no-focus --seed 1"}
common=(train --dataset camvid --data-root "$DATA" --exclude-drives 0006R0 --val-drives 0006R0
        --iters "$ITERS" --eval-every $((ITERS / 2)) --threads 1 --no-progress)
run() { name=${1%%:*}; args=${1#*:}; mkdir -p "$OUT/$name"
        # shellcheck disable=SC2086
        "$FORNET" "${common[@]}" --out "$OUT/$name" $args > "$OUT/$name/train.log" 2>&1; }
lane() { IFS=';' read -ra runs <<< "$1"; for r in "${runs[@]}"; do run "$r"; done; }
lane "$LANE_A" &
lane "$LANE_B" &
wait
