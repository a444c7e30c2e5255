#!/usr/bin/env bash
# Head ablation at 3x the schedule (1800 iterations), seeds 0 and 1, two runs at once (one thread each).
cd /work/main
run() { .venv/bin/python -m fornet_ros.training.train --recipe recipes/ablation_heads.yaml --data-dir /work/data \
  --variant "$1" --seed "$2" --iters 1800 --eval-every 1800 --out "/work/runs/heads_long_$3_s$2" \
  --threads 1 --workers 1 --no-progress > "/work/runs/heads_long_$3_s$2.log" 2>&1; }
for s in 0 1; do
  echo "seed $s start $(date)"
  run mnv2_paper $s paper & run mnv2_plain $s plain & wait
  echo "seed $s done $(date)"
done
for n in heads_long_paper_s0 heads_long_plain_s0 heads_long_paper_s1 heads_long_plain_s1; do
  bash scripts/streets_eval.sh /work/runs/$n/last.pt $n /work/runs/heads_long_evals /work/data "384 768" 2>&1 | grep -v "it/s\|s/it"
done
echo "HEADS_LONG_DONE $(date)"
