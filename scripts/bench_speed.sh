#!/usr/bin/env bash
# Regenerates the speed JSON behind docs/benchmarks.md ("Never slower for less") into OUT
# (default docs/bench/speed), then prints the tables: bash scripts/bench_speed.sh [OUT]
# Run it on a quiet machine (pause any training: kill -STOP / -CONT). Optional: SIZES="--size H W ...",
# KS="0.25 1.0", RUNS=7, OLD_FOCUS=<an older fornet_ros/model/focus.py> for the sparse before/after,
# PARTS="net int8 node e2e compile loadstep" (default: all) to rerun some of them.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/bench/speed}
mkdir -p "$OUT"
export PYTHONPATH=.
PY=.venv/bin/python
lscpu | grep 'Model name' > "$OUT/machine.txt"; uptime >> "$OUT/machine.txt"
[ -n "${OLD_FOCUS:-}" ] && $PY scripts/bench_focus_ab.py "$OLD_FOCUS" --rounds 15 > "$OUT/focus_ab_360x480.json"
SIZES=${SIZES:---size 360 480 --size 512 1024}
PARTS=" ${PARTS:-net int8 node e2e compile loadstep} "
if [[ $PARTS == *" net "* ]]; then
  $PY -m fornet_ros.cli bench $SIZES --topk ${KS:-0.1 0.25 0.5 0.75 0.9 1.0} --backend torch onnxruntime \
      --runs ${RUNS:-7} --threads 2 --json > "$OUT/bench_default.json"
  $PY -m fornet_ros.cli bench --variant ddrnet23_slim $SIZES --backend torch onnxruntime \
      --runs ${RUNS:-7} --threads 2 --json > "$OUT/bench_ddrnet.json"
fi
[[ $PARTS == *" int8 "* ]] && $PY scripts/bench_int8.py "${INT8_DIR:-/tmp/fornet_int8}" --runs 20 > "$OUT/int8.json"
# the node vs the Segmenter alone at a 720x1280 camera, per backend: torch, fastest (the node's default),
# onnxruntime (the default's dense export, what fastest runs at K = 1 when it picks ONNX Runtime)
if [[ $PARTS == *" node "* ]]; then
  for b in torch fastest; do
    $PY -m fornet_ros.cli bench-node --size 720 1280 --rate 5 --seconds 15 --threads 2 --backend $b \
        > "$OUT/node_720x1280_5hz_$b.json"
  done
  $PY -m fornet_ros.cli export --onnx /tmp/fornet_default_dense.onnx --dense > /dev/null
  $PY -m fornet_ros.cli bench-node --size 720 1280 --rate 5 --seconds 15 --threads 2 --backend onnxruntime \
      --checkpoint /tmp/fornet_default_dense.onnx > "$OUT/node_720x1280_5hz_onnxruntime.json"
fi
# the Segmenter end to end vs the best network (torch; fastest), at the default's input (448x896)
[[ $PARTS == *" e2e "* ]] && $PY scripts/bench_e2e_backends.py --camera-size 720 1280 --camera-size 1024 2048 \
    --runs 15 --threads 2 > "$OUT/e2e_backends.json"
# torch.compile (inductor) vs eager, dense (the path K = 1 takes), warm-up included
[[ $PARTS == *" compile "* ]] && $PY scripts/bench_compile.py --size 384 768 --size 360 480 --runs 15 --threads 2 \
    > "$OUT/compile.json"
# the latency controller vs the static K under a load step (a second camera + one CPU burner at 10 s)
[[ $PARTS == *" loadstep "* ]] && $PY -m fornet_ros.cli bench-node --size 720 1280 --rate 5 --seconds 30 \
    --load-step 10 --target-ms 250 --topk 1.0 --k-min 0.1 --k-max 1.0 --load-procs 1 \
    --plot "$OUT/loadstep.png" > "$OUT/loadstep.json"
true
$PY scripts/bench_tables.py --speed "$OUT"
