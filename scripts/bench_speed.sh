#!/usr/bin/env bash
# Regenerates the speed JSON behind docs/benchmarks.md ("Never slower for less") into OUT
# (default docs/bench/speed), then prints the tables: bash scripts/bench_speed.sh [OUT]
# Run it on a quiet machine (pause any training: kill -STOP / -CONT).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/bench/speed}
mkdir -p "$OUT"
export PYTHONPATH=.
PY=.venv/bin/python
lscpu | grep 'Model name' > "$OUT/machine.txt"; uptime >> "$OUT/machine.txt"
$PY scripts/bench_focus_ab.py "${OLD_FOCUS:-/work/main/fornet_ros/model/focus.py}" --rounds 15 > "$OUT/focus_ab_360x480.json"
$PY -m fornet_ros.cli bench --size 360 480 --size 512 1024 --topk 0.1 0.25 0.5 0.75 0.9 1.0 --backend torch onnxruntime \
    --runs 10 --threads 2 --json > "$OUT/bench_default.json"
$PY -m fornet_ros.cli bench --variant ddrnet23_slim --size 360 480 --size 512 1024 --backend torch onnxruntime \
    --runs 10 --threads 2 --json > "$OUT/bench_ddrnet.json"
$PY scripts/bench_int8.py "${INT8_DIR:-/tmp/fornet_int8}" --runs 20 > "$OUT/int8.json"
$PY -m fornet_ros.cli bench-node --size 360 480 --rate 5 --seconds 15 --threads 2 > "$OUT/node_360x480_5hz.json"
$PY scripts/bench_tables.py --speed "$OUT"
