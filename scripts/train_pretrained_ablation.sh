#!/usr/bin/env bash
# The heads ablation on the ImageNet-pretrained MobileNetV2 (issue: a model worth driving on):
# plain head (focus off), the paper's FoR-Net head, our sparse head trained at K = 1 (run at 0.25 and 1),
# one seed each, same recipe and budget, trained on CamVid train+val WITHOUT drive 0006R0, validated
# (final weights only) on 0006R0. Runs in parallel lanes, one torch thread each.
# usage: ITERS=400 SEED=0 scripts/train_pretrained_ablation.sh [DATA_ROOT] [RUNS]
set -euo pipefail
DATA=${1:-../shared/data/camvid}
RUNS=${2:-runs/pretrained}
ITERS=${ITERS:-400}
SEED=${SEED:-0}
FORNET=${FORNET:-.venv/bin/fornet}
VARIANTS=${VARIANTS:-"mnv2_plain mnv2_paper mnv2_sparse"}
mkdir -p "$RUNS"
for v in $VARIANTS; do
  extra=""; name="${v}_s$SEED"
  [ "$v" = mnv2_sparse ] && { extra="--topk 1.0"; name="${v}_k1_s$SEED"; }
  OMP_NUM_THREADS=1 nohup "$FORNET" train --data-root "$DATA" --split train val --exclude-drives 0006R0 \
    --val-split train --val-drives 0006R0 --variant "$v" $extra --iters "$ITERS" --eval-every "$ITERS" \
    --lr 1e-3 --warmup 30 --dice 1 --seed "$SEED" --threads 1 --out "$RUNS/$name" --no-progress \
    > "$RUNS/$name.log" 2>&1 &
done
wait
