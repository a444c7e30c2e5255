#!/usr/bin/env python3
"""Label and costmap scores of a checkpoint on CamVid drive 0006R0 (the hold-out drive), with the
demo clip's calibration (docs/calibration_camvid.md) and the built-in layers: one JSON object, the
`fornet eval` metrics plus "costmap" (fornet_ros.mapping.costmap_score: per layer cell IoU, false and missed
obstacles). The shipped-models table in docs/benchmarks.md is filled from it.

    python scripts/costmap_score.py [CHECKPOINT] --data-root ../shared/data/camvid > out.json

Never point it at the CamVid test split: it is withheld for independent evaluation.
"""

import argparse
import hashlib
import json
from pathlib import Path

from fornet_ros.tools import clip
from fornet_ros.training.datasets import build_dataset
from fornet_ros.training.evaluation import dataset_samples, evaluate_with_costmap
from fornet_ros.inference import Segmenter

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("checkpoint", nargs="?", default=None, help="default: the packaged model")
p.add_argument("--data-root", required=True, help="CamVid root (SegNet layout)")
p.add_argument("--drive", default="0006R0", help="the hold-out drive (frames of the train split)")
a = p.parse_args()
seg = Segmenter.from_checkpoint(a.checkpoint)
ds = build_dataset("camvid", a.data_root, "train", drives=[a.drive])
res = evaluate_with_costmap(seg, dataset_samples(ds), clip.camera_model(), clip.camera_pose(), progress=False)
ckpt = Path(a.checkpoint) if a.checkpoint else None
res.update(checkpoint=str(ckpt or "packaged default"), drive=a.drive,
           checkpoint_sha256=hashlib.sha256(ckpt.read_bytes()).hexdigest() if ckpt else None)
print(json.dumps(res))
