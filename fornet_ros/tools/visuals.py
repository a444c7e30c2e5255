"""Pictures for people (numpy + OpenCV, no ROS): class legends, the importance heat-map on a
full-range colour scale, colour bars. Shared by ``fornet predict`` and the demo report."""

from __future__ import annotations

import cv2
import numpy as np

from ..classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE


UI_WIDTH = 640  # px: a picture this wide (or narrower) gets text and legends at scale 1; wider, proportionally more


def ui_scale(width: int) -> float:
    """Scale of text, legends and colour bars for a picture ``width`` px wide (a frame, not a montage of
    several): 1 up to UI_WIDTH, then proportional, so a 2048-px frame's legend reads like a 640-px one's."""
    return max(1.0, float(width) / UI_WIDTH)


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


def colorbar(width: int, lo: float, hi: float, label: str = "importance", height: int = 22,
             scale: float | None = None) -> np.ndarray:
    """An RGB strip: the inferno map from ``lo`` (left) to ``hi`` (right), the values written on it;
    ``height`` and the text grow by ``scale`` (default :func:`ui_scale` of ``width``)."""
    s = ui_scale(width) if scale is None else scale
    height, fs, th = int(round(height * s)), 0.4 * s, max(1, int(s))
    ramp = np.repeat(np.linspace(0, 255, max(1, width)).astype(np.uint8)[None], height, 0)
    bar = cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO)[:, :, ::-1].copy()
    font, pad = cv2.FONT_HERSHEY_SIMPLEX, int(round(4 * s))
    for text, x, colour in ((f"{label} {lo:.2f}", pad, (255, 255, 255)),
                            (f"{hi:.2f}", width - pad - cv2.getTextSize(f"{hi:.2f}", font, fs, th)[0][0], (0, 0, 0))):
        cv2.putText(bar, text, (x, height - int(round(7 * s))), font, fs, colour, th, cv2.LINE_AA)
    return bar


def legend_panel(class_ids, width: int, classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE,
                 row_h: int = 18, scale: float | None = None) -> np.ndarray:
    """An RGB panel ``width`` wide naming each class of ``class_ids`` beside its palette colour
    (swatches framed, so the greys of building and pole stay visible on white). Rows, swatches and
    text grow by ``scale`` (default :func:`ui_scale` of ``width``; a montage of several frames
    passes its frame's)."""
    s = ui_scale(width) if scale is None else scale
    ids = [int(c) for c in class_ids if 0 <= int(c) < min(len(classes), len(palette))]
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.4 * s, max(1, int(s))
    row_h, sw, gap = int(round(row_h * s)), int(round(16 * s)), int(round(4 * s))
    cells = [(c, sw + 2 * gap + cv2.getTextSize(classes[c], font, fs, th)[0][0] + 3 * gap) for c in ids]
    rows, x = [[]], gap
    for c, w in cells:
        if x + w > width and rows[-1]:
            rows.append([])
            x = gap
        rows[-1].append((c, x))
        x += w
    panel = np.full((row_h * len(rows) + 2 * gap, width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        y = gap + r * row_h
        for c, x in row:
            top, bottom = (x, y + row_h // 9), (x + sw, y + row_h - row_h // 6)
            cv2.rectangle(panel, top, bottom, tuple(int(v) for v in palette[c]), -1)
            cv2.rectangle(panel, top, bottom, (0, 0, 0), th)
            cv2.putText(panel, classes[c], (x + sw + gap, y + row_h - row_h // 3), font, fs, (0, 0, 0), th,
                        cv2.LINE_AA)
    return panel


def with_legend(img: np.ndarray, labels_shown, classes=CITYSCAPES_CLASSES, palette=CITYSCAPES_PALETTE) -> np.ndarray:
    """``img`` with :func:`legend_panel` of the classes present in the label images ``labels_shown``
    (an array or a list of arrays; 255 = void is left out) stacked below it."""
    arrays = labels_shown if isinstance(labels_shown, (list, tuple)) else [labels_shown]
    present = sorted(set().union(*(np.unique(a).tolist() for a in arrays if a is not None)))
    return np.concatenate([img, legend_panel(present, img.shape[1], classes, palette)], 0)
