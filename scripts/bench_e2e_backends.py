"""The Segmenter end to end against its network alone, per backend (torch; fastest = the faster of
torch and the ONNX export, as `--backend fastest` picks it), camera size and outputs, interleaved
in one process: the issue #27 target "Segmenter end to end <= 1.15x the default's best network".
A real street frame (the packaged clip's first, resized to each camera size): the arg-max after the
network costs less where neighbouring pixels agree (inference/host_ops.py), so noise would mislead.
Beside each row, the three CPU steps host_ops replaced, old (one INTER_AREA resize, numpy, OpenCV)
against new, on the same frame and logits. One JSON object.

usage: python scripts/bench_e2e_backends.py [--checkpoint default] [--camera-size H W ...] [--runs 15] [--threads 2]
"""
import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import fornet_ros  # noqa: F401 - first: it sets libgomp's spin count (fornet_ros/__init__.py) before torch loads libgomp
import numpy as np
import torch

import cv2

from fornet_ros.inference import Segmenter, host_ops
from fornet_ros.inference.checkpoint import resolve_checkpoint
from fornet_ros.inference.path_choice import median_ms
from fornet_ros.tools.bench import machine_name
from fornet_ros.tools.clip import load_clip

p = argparse.ArgumentParser()
p.add_argument("--checkpoint", default=None)
p.add_argument("--camera-size", type=int, nargs=2, action="append", metavar=("H", "W"))
p.add_argument("--runs", type=int, default=15)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--cache", default=None, help="folder for the checkpoint copy and its ONNX export (default: a temp dir)")
a = p.parse_args()
torch.set_num_threads(a.threads)
cache = Path(a.cache or tempfile.mkdtemp(prefix="fornet_e2e_"))
cache.mkdir(parents=True, exist_ok=True)
ckpt = cache / resolve_checkpoint(a.checkpoint).name  # a copy: the export is cached beside it, not in the package
if not ckpt.exists():
    shutil.copy(resolve_checkpoint(a.checkpoint), ckpt)
segs = {"torch": Segmenter.from_checkpoint(ckpt, device="cpu", backend="torch"),
        "fastest": Segmenter.from_checkpoint(ckpt, device="cpu", backend="fastest", log=lambda m: None)}
choice = segs["fastest"].choice
segs["torch"].warmup()


def med(fn):  # the same timing as the path choice's (one warm call first), 2 decimals
    return round(median_ms(fn, a.runs), 2)


def old_normalise(seg, img):  # the numpy form host_ops.normalise replaced
    return (img.astype(np.float32) - seg.mean) / seg.std


def old_argmax(logits, size):  # the OpenCV upsample + numpy arg-max host_ops.upsampled_argmax replaced
    return cv2.resize(logits.transpose(1, 2, 0), size[::-1], interpolation=cv2.INTER_LINEAR).argmax(-1).astype(np.uint8)


street = load_clip(limit=1).images[0]
rows = []
for cam in a.camera_size or [(720, 1280), (1024, 2048)]:
    frame = cv2.resize(street, (cam[1], cam[0]), interpolation=cv2.INTER_LINEAR)
    for name, seg in segs.items():
        x = seg.prepare([frame])
        out = seg.infer(x)
        row = {"backend": name, "runs_on": seg.runtime, "camera_size": list(cam), "input_size": list(seg.input_size),
               "network_ms": med(lambda: seg.infer(x)), "pre_ms": med(lambda: seg.prepare([frame])),
               "post_labels_ms": med(lambda: seg.finish(out, [tuple(cam)], ())),
               "e2e_labels_ms": med(lambda: seg([frame], outputs=())),
               "e2e_all_ms": med(lambda: seg([frame]))}
        if name == "torch":  # the CPU steps, old vs new, on this frame and its logits (once per camera size)
            small = cv2.resize(frame, seg.input_size[::-1], interpolation=cv2.INTER_AREA)
            buf = np.empty((*seg.input_size, 3), np.float32)
            logits, work = out[0][0], tuple(seg.input_size)
            assert (host_ops.upsampled_argmax(logits, work) == old_argmax(logits, work)).all()
            row.update(resize_area_ms=med(lambda: cv2.resize(frame, seg.input_size[::-1], interpolation=cv2.INTER_AREA)),
                       resize_shrink_ms=med(lambda: host_ops.shrink(frame, seg.input_size)),
                       normalise_numpy_ms=med(lambda: old_normalise(seg, small)),
                       normalise_lut_ms=med(lambda: host_ops.normalise(small, seg.mean, seg.std, buf)),
                       argmax_opencv_ms=med(lambda: old_argmax(logits, work)),
                       argmax_host_ops_ms=med(lambda: host_ops.upsampled_argmax(logits, work)))
        rows.append(row)
    best = min(r["network_ms"] for r in rows if r["camera_size"] == list(cam))
    for r in rows:
        if r["camera_size"] == list(cam):
            r["e2e_labels_over_best_network"] = round(r["e2e_labels_ms"] / best, 3)
            r["e2e_all_over_best_network"] = round(r["e2e_all_ms"] / best, 3)
print(json.dumps({"machine": machine_name(), "torch": torch.__version__, "gomp_spincount": os.environ.get("GOMP_SPINCOUNT"), "threads": a.threads, "runs": a.runs,
                  "checkpoint": ckpt.name, "fastest_choice": choice, "rows": rows}, indent=1))
