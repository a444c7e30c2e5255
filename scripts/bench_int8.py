"""int8 (ONNX Runtime static QDQ, per-channel, calibrated on training frames) against fp32
ONNX Runtime and the torch backend, for one checkpoint: latency on this CPU and the files to score.

usage: python scripts/bench_int8.py OUT_DIR [--checkpoint default] [--data DIR ...] [--frames 32] [--runs 20]
Calibration frames: the same number from each --data folder (*.png, *.jpg; for the streets default
Cityscapes fine train, the low-resolution train copy and CamVid train), never a hold-out: CamVid drive
0006R0 is skipped by name, and no val or test folder should be given.
Writes OUT_DIR/int8.json and OUT_DIR/<stem>.*.onnx; score them with `fornet eval --checkpoint`.
"""
import argparse
import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np

from fornet_ros.inference import Segmenter
from fornet_ros.inference.backends import exported
from fornet_ros.inference.checkpoint import resolve_checkpoint
from fornet_ros.inference.path_choice import median_ms as _median_ms
from fornet_ros.tools.bench import machine_name

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--checkpoint", default=None)
p.add_argument("--data", nargs="+", default=["/work/shared/data/camvid/train"])
p.add_argument("--frames", type=int, default=32)
p.add_argument("--runs", type=int, default=20)
a = p.parse_args()
out = Path(a.out)
out.mkdir(parents=True, exist_ok=True)
ckpt = out / resolve_checkpoint(a.checkpoint).name  # a copy: the cache lands in OUT, not the package
shutil.copy(resolve_checkpoint(a.checkpoint), ckpt)
seg = Segmenter.from_checkpoint(ckpt, device="cpu")
files, per = [], -(-a.frames // len(a.data))
for folder in a.data:  # evenly spread over each folder's sorted frames
    found = sorted(f for ext in ("*.png", "*.jpg") for f in Path(folder).rglob(ext)  # photos only: no labels, no hold-out
                   if not f.name.startswith("0006R0") and not any(t in f.name for t in ("label", "annot", "gtFine")))
    if not found:
        raise SystemExit(f"bench_int8: no frames (*.png, *.jpg) under {folder}")
    files += found[:: max(1, len(found) // per)][:per]
files = files[: a.frames]
calib = seg.preprocess([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])
k = seg.topk_ratio
seg.warmup()
graph = "dense" if seg.paths.resolve(k, "auto", 1) in ("dense", "none") else "sparse"
t = time.perf_counter()
fp32 = exported(ckpt, seg.input_size, k, graph)
t_export = time.perf_counter() - t
t = time.perf_counter()
int8 = exported(ckpt, seg.input_size, k, graph, calibration=calib)
t_quant = time.perf_counter() - t
x = calib[:1]


def median_ms(fn):  # the same timing as the path choice's (one warm call first), 2 decimals
    return round(_median_ms(fn, a.runs), 2)


segs = {"torch": seg, "onnxruntime fp32": Segmenter.from_checkpoint(fp32), "onnxruntime int8": Segmenter.from_checkpoint(int8)}
res = {"machine": machine_name(), "checkpoint": str(resolve_checkpoint(a.checkpoint).name), "topk": k, "graph": graph,
       "input_size": list(seg.input_size), "calibration_frames": [f.name for f in files], "calibration_folders": a.data, "export_s": round(t_export, 1),
       "quantize_s": round(t_quant, 1), "files": {"fp32": str(fp32), "int8": str(int8)},
       "network_ms": {n: median_ms(lambda s=s: s.infer(x)) for n, s in segs.items()}}
ref = seg.infer(x)
res["labels_equal_int8_vs_torch"] = float((segs["onnxruntime int8"].infer(x)[0].argmax(1) == ref[0].argmax(1)).mean())
(out / "int8.json").write_text(json.dumps(res, indent=2))
print(json.dumps(res, indent=2))
