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
fornet bench-points --runs 20 > $B/points_640x480.json
# issue #11: the node vs the model alone (labels only / every output), torch and ONNX Runtime
fornet bench-node --size 512 1024 --input-size 512 1024 --rate 5 --seconds 20 --threads 2 ${CKPT:+--checkpoint $CKPT} > $B/node_512x1024_5hz_torch.json
ONNX=${ONNX:-/tmp/fornet_s_512x1024.onnx}
fornet export ${CKPT:+--checkpoint $CKPT} --onnx $ONNX --size 512 1024 > /dev/null
fornet bench-node --size 512 1024 --rate 5 --seconds 20 --threads 2 --checkpoint $ONNX > $B/node_512x1024_5hz_onnxruntime.json
# issue #15: a load step (CPU burner + second camera at 12 s), latency K controller off vs on
fornet bench-node --size 512 1024 --input-size 256 512 --rate 8 --seconds 40 --load-step 12 --threads 2 \
  --target-ms 110 --topk 1.0 --k-min 0.05 --k-max 1.0 ${CKPT:+--checkpoint $CKPT} --plot docs/images/load_step.png > $B/load_step_run2.json
# issue #13 (30 minutes): fornet bench-node --soak 30 --cameras 2 --size 480 640 --rate 5 --threads 1 > $B/soak_30min.json
