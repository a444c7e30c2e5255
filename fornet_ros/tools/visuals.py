"""Pictures for people (numpy + OpenCV, no ROS): class legends, the importance heat-map on a
full-range colour scale, colour bars. Shared by ``fornet predict`` and the demo report."""

from __future__ import annotations

import cv2
import numpy as np

from ..classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE


def importance_colors(imp: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Importance (float in [0, 1], or mono8 = importance x 255) -> (HxWx3 RGB inferno, lo, hi).

    The selector's importance of a trained model rarely exceeds ~0.4, so mapping [0, 1] onto the
    colour map leaves most of it unused (``_importance.png`` topped out at 103/255): the frame's
    own range [lo, hi] is stretched over the whole map; lo and hi (importance units) are returned
    for a colour bar. A constant image maps to the map's bottom colour."""
    x = np.asarray(imp, np.float32)
    if np.asarray(imp).dtype == np.uint8:
        x = x / 255.0
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    scaled = np.zeros(x.shape, np.uint8) if hi - lo < 1e-6 else \
        np.clip(np.rint((x - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)[:, :, ::-1].copy(), lo, hi


def colorbar(width: int, lo: float, hi: float, label: str = "importance", height: int = 22) -> np.ndarray:
    """An RGB strip: the inferno map from ``lo`` (left) to ``hi`` (right), the values written on it."""
    ramp = np.repeat(np.linspace(0, 255, max(1, width)).astype(np.uint8)[None], height, 0)
    bar = cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO)[:, :, ::-1].copy()
    font, s = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    for text, x, colour in ((f"{label} {lo:.2f}", 4, (255, 255, 255)),
                            (f"{hi:.2f}", width - 4 - cv2.getTextSize(f"{hi:.2f}", font, s, 1)[0][0], (0, 0, 0))):
        cv2.putText(bar, text, (x, height - 7), font, s, colour, 1, cv2.LINE_AA)
    return bar


def legend_panel(class_ids, width: int, classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE,
                 row_h: int = 18) -> np.ndarray:
    """An RGB panel ``width`` wide naming each class of ``class_ids`` beside its palette colour
    (swatches framed, so the greys of building and pole stay visible on white)."""
    ids = [int(c) for c in class_ids if 0 <= int(c) < min(len(classes), len(palette))]
    font, s = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    cells = [(c, 22 + cv2.getTextSize(classes[c], font, s, 1)[0][0] + 12) for c in ids]
    rows, x = [[]], 4
    for c, w in cells:
        if x + w > width and rows[-1]:
            rows.append([])
            x = 4
        rows[-1].append((c, x))
        x += w
    panel = np.full((row_h * len(rows) + 4, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = 2 + r * row_h
        for c, x in row:
            cv2.rectangle(panel, (x, y + 2), (x + 16, y + row_h - 3), tuple(int(v) for v in palette[c]), -1)
            cv2.rectangle(panel, (x, y + 2), (x + 16, y + row_h - 3), (0, 0, 0), 1)
            cv2.putText(panel, classes[c], (x + 20, y + row_h - 6), font, s, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def with_legend(img: np.ndarray, labels_shown, classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE) -> np.ndarray:
    """``img`` with :func:`legend_panel` of the classes present in the label images ``labels_shown``
    (an array or a list of arrays; 255 = void is left out) stacked below it."""
    arrays = labels_shown if isinstance(labels_shown, (list, tuple)) else [labels_shown]
    present = sorted(set().union(*(np.unique(a).tolist() for a in arrays if a is not None)))
    return np.concatenate([img, legend_panel(present, img.shape[1], classes, palette)], 0)
