"""``fornet predict``: segment an image or a folder of images into PNG files."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ..classes import colorize
from ..errors import FornetError
from ..training.datasets import DatasetError, read_rgb
from ..validation import check_number, check_output_dir
from ..tools.visuals import importance_colors
from .model_options import add_model_arguments, segmenter_from_args

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm")


def list_images(path: Path, out: Path | None = None) -> list[Path]:
    """The images of a file or folder (recursively); none under ``out``, the folder predictions go to
    (a second run into a sub-folder of the input must not segment the first run's outputs)."""
    if not path.is_dir():
        return [path]
    skip = out.resolve() if out is not None else None
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS
                  and (skip is None or skip not in p.resolve().parents))


def add_arguments(p):
    p.description = ("Segment an image or a folder of images. Writes per image <stem>_labels.png (mono8 train "
                     "IDs, image size), <stem>_color.png (palette overlay) and, for FoR-Net models, <stem>_importance.png "
                     "(heat-map, each image's importance range stretched over the full colour scale).")
    p.add_argument("input", help="image file or folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the palette colours, in [0, 1]")
    add_model_arguments(p)


def run(a):
    src = Path(a.input)
    if not src.exists():
        raise FornetError(f"input not found: {src}")
    out = check_output_dir(a.out)
    if src.is_dir() and out.resolve() == src.resolve():  # outputs among the inputs: the next run segments them
        raise FornetError(f"--out {out} is the input folder: choose another folder (e.g. {out / 'pred'})")
    images = list_images(src, out)
    if not images:
        raise FornetError(f"no images ({', '.join(IMAGE_EXTS)}) in {src}"
                          + (f" outside --out {out}" if src.resolve() in out.resolve().parents else ""))
    check_number("--alpha", a.alpha, 0.0, 1.0)
    seg = segmenter_from_args(a)
    written, unreadable = 0, []
    for path in tqdm(images, desc="predict", disable=len(images) < 2):
        try:
            img = read_rgb(path)
        except DatasetError as e:
            unreadable.append(str(e))
            continue
        r = seg(img)
        color = colorize(r.labels, seg.palette)
        overlay = (img * (1 - a.alpha) + color * a.alpha).astype(np.uint8)
        if not written:
            out.mkdir(parents=True, exist_ok=True)
        maps = [("labels", r.labels), ("color", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))]
        if r.importance is not None:  # a model from another toolbox has no importance map
            maps.append(("importance", cv2.cvtColor(importance_colors(r.importance)[0], cv2.COLOR_RGB2BGR)))
        for suffix, arr in maps:
            if not cv2.imwrite(str(out / f"{path.stem}_{suffix}.png"), arr):
                raise FornetError(f"cannot write {out / f'{path.stem}_{suffix}.png'}")
        written += 1
    if not written:  # one line (the CLI's error), naming the first problem
        raise FornetError(unreadable[0] if len(unreadable) == 1 else
                          f"no prediction written: all {len(images)} images in {src} are unreadable ({unreadable[0]}, ...)")
    for problem in unreadable:
        print(f"fornet predict: skipping: {problem}", file=sys.stderr)
    print(f"wrote {written} prediction(s) to {out}" + (f", skipped {len(unreadable)} unreadable image(s)"
                                                       if unreadable else ""))
