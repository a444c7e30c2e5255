#!/usr/bin/env bash
# Score every finished run of scripts/train_pretrained_ablation.sh on the hold-out drive 0006R0 with
# `fornet eval` (FINAL weights, last.pt: no choice made on the data we report), plus test-time K for
# the sparse head trained at K = 1 (run at 0.25) and the paper head (run at 0.2 and 1).
# usage: scripts/pretrained_eval.sh [RUNS] [DATA_ROOT] [OUT]
set -euo pipefail
RUNS=${1:-runs/pretrained}
DATA=${2:-../shared/data/camvid}
OUT=${3:-docs/bench/pretrained}
FORNET=${FORNET:-.venv/bin/fornet}
mkdir -p "$OUT"
ev() { "$FORNET" eval --dataset camvid --data-root "$DATA" --split train --drives 0006R0 --device cpu --json "$@"; }
for run in "$RUNS"/*/; do
  name=$(basename "$run")
  [ -f "$run/last.pt" ] || continue
  iters=$(python3 -c "import json;print(json.load(open('$run/args.json'))['iters'])")
  grep -q "\"step\": $iters," "$RUNS/$name.log" || continue  # finished runs only
  [ -s "$OUT/eval_$name.json" ] || ev --checkpoint "$run/last.pt" > "$OUT/eval_$name.json"
  cp "$run/log.csv" "$OUT/train_log_$name.csv"
  case $name in *sparse_k1*) sweep="0.25";; *paper*) sweep="0.2 1.0";; *) sweep="";; esac
  for k in $sweep; do
    [ -s "$OUT/eval_${name}_at_k$k.json" ] || ev --checkpoint "$run/last.pt" --topk $k > "$OUT/eval_${name}_at_k$k.json"
  done
done
ls "$OUT"
