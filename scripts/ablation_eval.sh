#!/usr/bin/env bash
# Score every finished ablation run on the hold-out drive 0006R0 with `fornet eval`, plus a
# test-time K sweep of the K=0.25 runs. Uses each run's FINAL weights (last.pt), never the
# best-on-hold-out checkpoint, so no choice is made on the data we report.
# usage: scripts/ablation_eval.sh [RUNS] [DATA_ROOT] [OUT]
set -euo pipefail
RUNS=${1:-runs/camvid2}
DATA=${2:-../shared/data/camvid}
OUT=${3:-docs/bench/ablation2}
FORNET=${FORNET:-.venv/bin/fornet}
mkdir -p "$OUT"
ev() { "$FORNET" eval --dataset camvid --data-root "$DATA" --split train --drives 0006R0 --device cpu --json "$@"; }
for run in "$RUNS"/*/; do
  name=$(basename "$run")
  [ -f "$run/last.pt" ] || continue
  grep -q "\"step\": ${ITERS:-500}," "$run/train.log" || continue  # finished runs only
  [ -f "$OUT/eval_$name.json" ] || ev --checkpoint "$run/last.pt" > "$OUT/eval_$name.json"
  cp "$run/log.csv" "$OUT/train_log_$name.csv"
  # test-time K on the K=0.25- and the K=1-trained weights (train dense, deploy sparse?)
  case $name in k0.25_*) sweep="0.0 0.1 0.5 1.0";; k1.00_*) sweep="0.0 0.1 0.25 0.5";; *) sweep="";; esac
  for k in $sweep; do
    [ -f "$OUT/eval_${name}_at_k$k.json" ] || ev --checkpoint "$run/last.pt" --topk $k > "$OUT/eval_${name}_at_k$k.json"
  done
  case $name in k0.25_*)
    # content-adaptive K (issue #15): regions with importance >= T, between 5 % and 50 % of them
    for t in 0.12 0.16 0.2 0.25; do
      [ -f "$OUT/eval_${name}_adaptive_t$t.json" ] || \
        ev --checkpoint "$run/last.pt" --adaptive-k $t 0.05 0.5 > "$OUT/eval_${name}_adaptive_t$t.json"
    done;;
  esac
done
