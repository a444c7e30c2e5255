"""Hold-out frames with the labels before (K = 0: the cheap stride-8 path) and after refinement
(the model's K), the selected regions outlined, and where refinement fixed (green) or broke (red)
pixels. Frames: CamVid drive 0006R0 (CC BY-NC 4.0, Brostow et al. 2008/2009; see docs/model_card.md).

usage: python scripts/refinement_frames.py CHECKPOINT [--data-root ../shared/data/camvid] [--frames 3]
       [--out docs/images/refinement_holdout.png]
"""
import argparse

import cv2
import numpy as np

from fornet_ros.classes import IGNORE_INDEX, colorize
from fornet_ros.training.datasets import build_dataset
from fornet_ros.inference import Segmenter


def outline(img, mask, color=(255, 255, 255)):
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return cv2.drawContours(img.copy(), contours, -1, color, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("--data-root", default="../shared/data/camvid")
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--out", default="docs/images/refinement_holdout.png")
    a = p.parse_args()
    seg = Segmenter.from_checkpoint(a.checkpoint, device="cpu")
    k = seg.topk_ratio
    ds = build_dataset("camvid", a.data_root, "train", drives=["0006R0"])
    rows = []
    for i in np.linspace(0, len(ds) - 1, a.frames).astype(int):
        img, gt = ds.load(int(i))
        seg.topk_ratio = 0.0
        before = seg(img).labels
        seg.topk_ratio = k
        r = seg(img)
        valid = gt != IGNORE_INDEX
        fixed = valid & (before != gt) & (r.labels == gt)
        broke = valid & (before == gt) & (r.labels != gt)
        change = np.zeros_like(img)
        change[fixed] = (0, 220, 0)
        change[broke] = (230, 0, 0)
        gt_c = colorize(gt, seg.palette)
        panels = [img, gt_c, colorize(before, seg.palette), outline(colorize(r.labels, seg.palette), r.selected),
                  outline(change, r.selected, (128, 128, 128))]
        rows.append(np.concatenate([cv2.resize(x, (320, 240), interpolation=cv2.INTER_NEAREST) for x in panels], 1))
    head = np.full((28, rows[0].shape[1], 3), 255, np.uint8)
    for j, t in enumerate(["image (0006R0)", "ground truth", "K = 0 (stride 8, upsampled)",
                           f"K = {k:g}: refined regions outlined", "fixed (green) / broke (red)"]):
        cv2.putText(head, t, (6 + 320 * j, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    grid = np.concatenate([head, *rows], 0)
    cv2.imwrite(a.out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
