#!/usr/bin/env bash
# The GPU check of issue #20, as one script for a session that is lent a GPU (about 15 minutes in all):
# the GPU-only tests (CUDA graph replay == eager, the device path vs the CPU OpenCV path), then
# `fornet bench --device cuda --e2e` for the model that ships, then (if this onnxruntime has TensorRT)
# `fornet export --tensorrt`; `fornet bench-node` too where rclpy is installed. Everything lands in one
# folder as JSON; nothing here needs the network.
#
#   scripts/gpu_check.sh [CHECKPOINT] [OUT_DIR]
#
# CHECKPOINT: a .pt (default: the packaged model, whichever it is by then). OUT_DIR: default $OUT (the
# device tool's return folder) or ./gpu_check_out. Run from the repository root with a Python that has
# torch built for CUDA, numpy, opencv and pytest ($PYTHON, default python3); onnx/onnxruntime are optional.
# Each step has its own time limit, so a hang cannot eat the whole lease; total about 4-8 minutes
# (SKIP_NODE=1 / SKIP_TRT=1 drop the two optional steps; RUNS=N sets the timed runs, default 50).
set -u
cd "$(dirname "$0")/.."
CKPT="${1:-}"
OUTDIR="${2:-${OUT:-gpu_check_out}}"
PY="${PYTHON:-python3}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"  # cpu: a smoke test of this script's plumbing on a machine without a GPU
RUNS="${RUNS:-50}"
export DEVICE
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
CK_ARGS=()
[ -n "$CKPT" ] && CK_ARGS=(--checkpoint "$CKPT")
t0=$(date +%s)
step() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }

step "environment"
"$PY" - "$OUTDIR/env.json" <<'EOF' || { echo "torch with CUDA is needed: stop"; exit 3; }
import json, subprocess, sys
import torch
import os
cuda = os.environ["DEVICE"] != "cpu"
assert torch.cuda.is_available() or not cuda, "torch.cuda.is_available() is False"
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except OSError:
    smi = None
info = {"gpu": torch.cuda.get_device_name(0) if cuda else None, "nvidia_smi": smi, "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(), "python": sys.version.split()[0]}
for mod in ("cv2", "onnx", "onnxruntime", "pytest"):
    try:
        m = __import__(mod)
        info[mod] = getattr(m, "__version__", "?")
        if mod == "onnxruntime":
            info["ort_providers"] = m.get_available_providers()
    except ImportError:
        info[mod] = None
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps(info))
EOF

step "GPU tests (CUDA graphs replay == eager; device path vs CPU OpenCV path; Segmenter on CUDA)"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -rs test/test_cuda_graphs.py test/test_device_ops.py \
    test/test_inference.py --junitxml="$OUTDIR/gpu_tests.xml" > "$OUTDIR/gpu_tests.txt" 2>&1
echo "tests rc=$?" | tee -a "$OUTDIR/gpu_tests.txt"
tail -5 "$OUTDIR/gpu_tests.txt"

step "fornet bench --device cuda --e2e (the model's input size, then 512x1024; 1 and 4 cameras)"
for SIZE in "" "512 1024"; do
    tag=$([ -z "$SIZE" ] && echo model_input || echo "${SIZE// /x}")
    # shellcheck disable=SC2086
    timeout 200 "$PY" -m fornet_ros.cli bench --e2e --device "$DEVICE" "${CK_ARGS[@]}" ${SIZE:+--size $SIZE} \
        --camera-size 720 1280 --camera-size 1024 2048 --cameras 1 4 --runs "$RUNS" --warmup "${WARMUP:-5}" --json \
        > "$OUTDIR/bench_e2e_$tag.json" 2> "$OUTDIR/bench_e2e_$tag.err"
    echo "bench $tag rc=$?"; tail -2 "$OUTDIR/bench_e2e_$tag.err"
done

step "sparse vs dense K = 0.25 and DDRNet-23-slim, graph mode, 1024x2048 input and camera, 4 cameras (untrained)"
for MODE in sparse dense; do
    timeout 150 "$PY" -m fornet_ros.cli bench --e2e --device "$DEVICE" --variant fornet_s ddrnet23_slim \
        --size 1024 2048 --camera-size 1024 2048 --cameras 4 --topk 0.25 --mode "$MODE" --runs "${RUNS_B4:-20}" \
        --warmup "${WARMUP:-5}" --json > "$OUTDIR/bench_b4_$MODE.json" 2> "$OUTDIR/bench_b4_$MODE.err"
    echo "bench b4 $MODE rc=$?"; tail -2 "$OUTDIR/bench_b4_$MODE.err"
done

step "summary of the bench JSON (medians, ms)"
"$PY" - "$OUTDIR" <<'EOF'
import glob, json, sys
for f in sorted(glob.glob(f"{sys.argv[1]}/bench_*.json")):
    try:
        res = json.load(open(f))
    except ValueError:
        print(f, "(no JSON)"); continue
    print(f"# {f}: {res.get('gpu')} driver {res.get('driver')} CUDA {res.get('cuda')} torch {res['torch']} "
          f"{res['precision']} processing {res['processing']} graphs {res['cuda_graphs']}")
    for r in res["results"]:
        cells = " ".join(f"{c}={'n/a' if r[c + '_ms'] is None else r[c + '_ms']['median']}"
                         for c in ("network", "graph", "pre", "post", "e2e", "e2e_labels"))
        g = r["graph_ms"] or {}
        print(f"{r['variant']} {r['camera_size']} in {r['input_size']} x{r['cameras']} K={r['topk']} {r['mode']}: {cells}"
              + (f" | replay-eager max|dlogit| {g['max_abs_logit_diff']:.2e} same regions {g['selected_equal']}" if g else ""))
EOF

if [ -z "${SKIP_NODE:-}" ] && [ "$DEVICE" != cpu ] && "$PY" -c "import rclpy" 2>/dev/null; then
    step "fornet bench-node (the node over DDS on CUDA vs the model alone; labels only and every output)"
    timeout 150 "$PY" -m fornet_ros.cli bench-node "${CK_ARGS[@]}" --size 1024 2048 --rate 10 --seconds 10 \
        > "$OUTDIR/bench_node.json" 2> "$OUTDIR/bench_node.err"
    echo "bench-node rc=$?"
else
    echo "(bench-node skipped: SKIP_NODE, the CPU, or no rclpy here)"
fi

if [ -z "${SKIP_TRT:-}" ]; then
    step "TensorRT build-ahead (only if this onnxruntime has the TensorRT provider)"
    timeout 180 "$PY" -m fornet_ros.cli export "${CK_ARGS[@]}" --onnx "$OUTDIR/trt/model.onnx" --tensorrt \
        --max-batch 4 > "$OUTDIR/tensorrt.json" 2> "$OUTDIR/tensorrt.err"
    echo "tensorrt rc=$? $(head -c 400 "$OUTDIR/tensorrt.err")"
    rm -f "$OUTDIR"/trt/*.onnx  # large, and rebuilt from the checkpoint at will; the report stays
fi

step "done: $OUTDIR"
ls -la "$OUTDIR"
