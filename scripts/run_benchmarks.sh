#!/usr/bin/env bash
# The speed benchmarks behind docs/benchmarks.md (JSON into docs/bench/). Run on a quiet machine.
set -eo pipefail  # no -u: colcon's setup.bash reads unset variables
cd "$(dirname "$0")/.."
source scripts/env.sh
B=docs/bench
mkdir -p $B
fornet info --variant fornet_s --size 512 1024 --json > $B/info_fornet_s.json
fornet info --variant ddrnet23_slim --size 512 1024 --json > $B/info_ddrnet23_slim.json
# issue #9/#11: FoR-Net (sparse/dense, K), focus off and DDRNet-23-slim, torch and onnxruntime, two sizes, one run
fornet bench --variant fornet_s ddrnet23_slim --focus-off --size 512 1024 --size 1024 2048 \
  --topk 0.1 0.25 0.5 1.0 --runs 10 --threads 2 --backend torch onnxruntime --json > $B/bench_ablation.json
fornet bench-costmap --size 1024 2048 --runs 30 > $B/costmap_1024x2048.json
fornet bench-node --size 512 1024 --input-size 512 1024 --rate 5 --seconds 20 --threads 2 ${CKPT:+--checkpoint $CKPT} > $B/node_512x1024_5hz.json
fornet bench-node --size 1024 2048 --input-size 512 1024 --rate 30 --seconds 20 --threads 2 ${CKPT:+--checkpoint $CKPT} > $B/node_1024x2048_30hz.json
