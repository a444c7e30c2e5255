"""``fornet eval``: score a model on a dataset split (:func:`fornet_ros.training.evaluation.evaluate`)."""

from __future__ import annotations

import json
import sys

from ..errors import FornetError
from ..training.datasets import DATASETS, build_dataset
from ..training.evaluation import dataset_samples, evaluate, trained_on_scored_data
from .model_options import add_model_arguments, segmenter_from_args


def checkpoint_train_record(path) -> dict | None:
    """The ``train`` record of a ``.pt`` checkpoint (None for an ONNX file or none recorded)."""
    if path is not None and str(path).endswith(".onnx"):
        return None
    from ..inference.checkpoint import read_checkpoint
    return read_checkpoint(path).get("train")


def add_arguments(p):
    p.description = ("Score a model on a dataset split: mIoU (classes present in the ground truth), per-class IoU, "
                     "pixel accuracy, boundary IoU (Cheng et al. 2021, band of --boundary-px), thin-structure mIoU, "
                     "hard-region recall (share of wrong pixels inside the Top-K regions), throughput.")
    p.add_argument("--dataset", default="camvid", choices=sorted(DATASETS), help="the dataset layout of --data-root")
    p.add_argument("--data-root", required=True, help="dataset folder")
    p.add_argument("--split", default="val", help="any split folder under the root (CamVid: train, val, test)")
    p.add_argument("--drives", nargs="*", help="CamVid: only these drives (name prefixes)")
    p.add_argument("--boundary-px", type=int, default=3, help="boundary IoU: band (px) around label edges")
    p.add_argument("--limit", type=int, default=None, help="at most N images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_model_arguments(p)


def run(a):
    ds = build_dataset(a.dataset, a.data_root, a.split, **({"drives": a.drives} if a.drives else {}))
    seg = segmenter_from_args(a)
    if tuple(seg.classes) != tuple(ds.classes):  # label IDs are positions in these lists: they must agree
        raise FornetError(f"the model's classes {list(seg.classes)} are not the dataset's {list(ds.classes)}; "
                          "a folder dataset labelled in the model's classes names them in classes.yaml "
                          "(classes: [...])")
    warning = trained_on_scored_data(checkpoint_train_record(a.checkpoint), a.split, a.drives, a.dataset, a.data_root)
    if warning:
        print(f"fornet eval: {warning}", file=sys.stderr)
    res = evaluate(seg, dataset_samples(ds, a.limit), boundary_px=a.boundary_px, progress=not a.json, limit=a.limit,
                   prediction_lut=ds.prediction_lut)
    res.update(dataset=a.dataset, split=a.split, **({"warning": warning} if warning else {}))
    if a.json:
        print(json.dumps(res))
        return
    print(f"mIoU {res['miou']:.4f}  pixel acc {res['pixel_accuracy']:.4f}  boundary IoU {res['boundary_iou']:.4f}  "
          f"thin mIoU {res['thin_miou']}  hard-region recall {res['hard_region_recall']}")
    for k, v in res["per_class_iou"].items():
        print(f"  {k:15} {v:.4f}")
