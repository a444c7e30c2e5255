"""``fornet bag export``: a bag's camera frames as PNG files (and its ground truth, where it has some),
the way to get frames to ``fornet predict`` on. Reading the bag is :mod:`.bags`.

Layout of ``out`` (one folder per camera ``<cam>``; a namespace ``a/b`` becomes ``a_b``)::

    images/<cam>/<index>_<stamp ns>.png   RGB frames, lossless
    labels/<cam>/<index>_<stamp ns>.png   mono8 Cityscapes train IDs (255 = ignore), same names
    classes.yaml                          written with labels: the folder is then a ``fornet eval
                                          --dataset folder`` dataset whose split is the camera
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import yaml

from ..classes import CITYSCAPES_CLASSES
from ..validation import check_output_dir
from .bags import BagError, bag_cameras, iter_frames, open_reader


def _image_counts(path, camera: str | None) -> dict[str, int]:
    """Image messages per camera of the bag (only ``camera``, if given): the progress bar's total."""
    reader = open_reader(path)
    try:
        cams = bag_cameras(reader)
        if camera is not None and camera.strip("/") not in cams:
            raise BagError(f"{path}: camera {camera!r} not in {cams}")
        return {cam: sum(c.msgcount for c in reader.connections
                         if re.fullmatch(f"/?{re.escape(cam)}/image_raw(/compressed)?", c.topic))
                for cam in cams if camera is None or cam == camera.strip("/")}
    finally:
        reader.close()


def _folder(cam: str) -> str:
    return cam.strip("/").replace("/", "_") or "camera"


def export_frames(path, out, camera: str | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """Write every image of the bag (of ``camera``; the first ``limit`` per camera) and its ground truth
    under ``out`` (module doc). ``out`` must be new or empty: frames of two bags must not mix."""
    from tqdm import tqdm
    out = check_output_dir(out)
    if out.is_dir() and any(out.iterdir()):
        raise BagError(f"output folder {out} is not empty; remove it or choose another")
    todo = {cam: min(n, limit or n) for cam, n in _image_counts(path, camera).items()}
    counts = {cam: [0, 0] for cam in todo}  # camera -> [frames, with labels]
    with tqdm(total=sum(todo.values()), desc="export", disable=not progress or sum(todo.values()) < 5) as bar:
        for cam, stamp, rgb, gt in iter_frames(path, camera):
            n = counts[cam]
            if n[0] >= todo[cam]:
                if all(counts[c][0] >= todo[c] for c in todo):
                    break  # --limit reached on every camera: decode no more
                continue
            name = f"{n[0]:06d}_{stamp}.png"
            _write(out / "images" / _folder(cam) / name, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if gt is not None:
                _write(out / "labels" / _folder(cam) / name, gt)
                n[1] += 1
            n[0] += 1
            bar.update(1)
    if not any(n[0] for n in counts.values()):
        raise BagError(f"{path}: no image frames")
    labelled = sum(n[1] for n in counts.values())
    if labelled:  # the bags' labels are Cityscapes train IDs: value i is class i
        (out / "classes.yaml").write_text(yaml.safe_dump({"mapping": {i: i for i in range(len(CITYSCAPES_CLASSES))}}))
    return {"bag": str(path), "out": str(out), "frames": sum(n[0] for n in counts.values()), "with_labels": labelled,
            "cameras": {cam: {"frames": n[0], "with_labels": n[1], "images": str(out / "images" / _folder(cam))}
                        for cam, n in counts.items()}}


def _write(path: Path, image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise BagError(f"cannot write {path}")
