#!/usr/bin/env bash
# Regenerates the speed JSON behind docs/benchmarks.md ("Never slower for less") into OUT
# (default docs/bench/speed), then prints the tables: bash scripts/bench_speed.sh [OUT]
# Run it on a quiet machine (pause any training: kill -STOP / -CONT). Optional: SIZES="--size H W ...",
# KS="0.25 1.0", RUNS=7, OLD_FOCUS=<an older fornet_ros/model/focus.py> for the sparse before/after.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/bench/speed}
mkdir -p "$OUT"
export PYTHONPATH=.
PY=.venv/bin/python
lscpu | grep 'Model name' > "$OUT/machine.txt"; uptime >> "$OUT/machine.txt"
[ -n "${OLD_FOCUS:-}" ] && $PY scripts/bench_focus_ab.py "$OLD_FOCUS" --rounds 15 > "$OUT/focus_ab_360x480.json"
SIZES=${SIZES:---size 360 480 --size 512 1024}
$PY -m fornet_ros.cli bench $SIZES --topk ${KS:-0.1 0.25 0.5 0.75 0.9 1.0} --backend torch onnxruntime \
    --runs ${RUNS:-7} --threads 2 --json > "$OUT/bench_default.json"
$PY -m fornet_ros.cli bench --variant ddrnet23_slim $SIZES --backend torch onnxruntime \
    --runs ${RUNS:-7} --threads 2 --json > "$OUT/bench_ddrnet.json"
$PY scripts/bench_int8.py "${INT8_DIR:-/tmp/fornet_int8}" --runs 20 > "$OUT/int8.json"
$PY -m fornet_ros.cli bench-node --size 360 480 --rate 5 --seconds 15 --threads 2 > "$OUT/node_360x480_5hz.json"
$PY scripts/bench_tables.py --speed "$OUT"
