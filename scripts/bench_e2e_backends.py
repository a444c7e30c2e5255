"""The Segmenter end to end against its network alone, per backend (torch; fastest = the faster of
torch and the ONNX export, as `--backend fastest` picks it), camera size and outputs, interleaved
in one process: the issue #27 target "Segmenter end to end <= 1.15x the default's best network".
Random uint8 frames (the cost does not depend on content for a dense graph). One JSON object.

usage: python scripts/bench_e2e_backends.py [--checkpoint default] [--camera-size H W ...] [--runs 15] [--threads 2]
"""
import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fornet_ros.inference import Segmenter
from fornet_ros.inference.checkpoint import resolve_checkpoint
from fornet_ros.inference.path_choice import median_ms
from fornet_ros.tools.bench import machine_name

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


rows = []
for cam in a.camera_size or [(720, 1280), (1024, 2048)]:
    frame = np.random.default_rng(0).integers(0, 256, (*cam, 3), dtype=np.uint8)
    for name, seg in segs.items():
        x = seg.prepare([frame])
        out = seg.infer(x)
        row = {"backend": name, "runs_on": seg.backend, "camera_size": list(cam), "input_size": list(seg.input_size),
               "network_ms": med(lambda: seg.infer(x)), "pre_ms": med(lambda: seg.prepare([frame])),
               "post_labels_ms": med(lambda: seg.finish(out, [tuple(cam)], ())),
               "e2e_labels_ms": med(lambda: seg([frame], outputs=())),
               "e2e_all_ms": med(lambda: seg([frame]))}
        rows.append(row)
    best = min(r["network_ms"] for r in rows if r["camera_size"] == list(cam))
    for r in rows:
        if r["camera_size"] == list(cam):
            r["e2e_labels_over_best_network"] = round(r["e2e_labels_ms"] / best, 3)
            r["e2e_all_over_best_network"] = round(r["e2e_all_ms"] / best, 3)
print(json.dumps({"machine": machine_name(), "torch": torch.__version__, "threads": a.threads, "runs": a.runs,
                  "checkpoint": ckpt.name, "fastest_choice": choice, "rows": rows}, indent=1))
