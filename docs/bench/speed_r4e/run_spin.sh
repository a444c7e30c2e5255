#!/usr/bin/env bash
# quiet window: training paused by the caller
cd "$(dirname "$0")/../../.."; source .venv/bin/activate
[ -f /tmp/fornet_default_dense.onnx ] || python -m fornet_ros.cli export --onnx /tmp/fornet_default_dense.onnx --dense
for rep in 1 2; do
  GOMP_SPINCOUNT=300000 python docs/bench/speed_r4e/spin_probe.py torch
  GOMP_SPINCOUNT=10000 python docs/bench/speed_r4e/spin_probe.py torch
  GOMP_SPINCOUNT=300000 PROBE_SPINSTOP=0 python docs/bench/speed_r4e/spin_probe.py ort
  GOMP_SPINCOUNT=300000 PROBE_SPINSTOP=1 python docs/bench/speed_r4e/spin_probe.py ort
  GOMP_SPINCOUNT=10000 PROBE_SPINSTOP=1 python docs/bench/speed_r4e/spin_probe.py ort
done
