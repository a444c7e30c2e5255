#!/usr/bin/env python3
"""Markdown tables for the model card from scripts/streets_eval.sh's JSON files:

    python scripts/streets_report.py docs/bench/streets MODEL[:SIZE] ...   (e.g. streets_s0:384x768 camvid_default:own)

Prints the summary (mIoU / boundary IoU / thin mIoU per hold-out) and the per-class IoU per hold-out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HOLDOUTS = (("frankfurt", "Cityscapes Frankfurt val (10, 2048x1024)"),
            ("cslowres_val", "Cityscapes val, low resolution (500, 256x512)"),
            ("0006R0", "CamVid drive 0006R0 (101, 480x360)"))


def load(folder: Path, model: str, size: str, holdout: str) -> dict | None:
    f = folder / f"eval_{model}_{holdout}_{size}.json"
    return json.loads(f.read_text()) if f.is_file() else None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder, runs = Path(argv[0]), [(r.split(":") + ["own"])[:2] for r in argv[1:]]
    print("| model (input) | " + " | ".join(name for _, name in HOLDOUTS) + " |")
    print("|---|" + "---|" * len(HOLDOUTS))
    for model, size in runs:
        cells = []
        for h, _ in HOLDOUTS:
            d = load(folder, model, size, h)
            cells.append("—" if d is None else f"{d['miou']:.3f} / {d['boundary_iou']:.3f} / {d['thin_miou']:.3f}")
        print(f"| {model} ({size}) | " + " | ".join(cells) + " |")
    for h, name in HOLDOUTS:
        results = [(f"{m} ({s})", load(folder, m, s, h)) for m, s in runs]
        results = [(n, d) for n, d in results if d]
        if not results:
            continue
        classes = list(results[0][1]["per_class_iou"])
        print(f"\n**{name}**, IoU per class present in the ground truth:\n")
        print("| class | " + " | ".join(n for n, _ in results) + " |")
        print("|---|" + "---|" * len(results))
        for c in classes:
            print(f"| {c} | " + " | ".join(f"{d['per_class_iou'].get(c, float('nan')):.3f}" for _, d in results) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
