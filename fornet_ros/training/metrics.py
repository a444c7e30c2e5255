"""Segmentation metrics (numpy/opencv): confusion matrix, mIoU, boundary IoU, thin-structure mIoU,
hard-region recall.

Boundary IoU follows Cheng et al., "Boundary IoU: Improving Object-Centric Image Segmentation
Evaluation", CVPR 2021: for a binary mask M, its boundary region M_d is the set of pixels of M
within distance d of M's contour, computed as M minus its erosion by a (2d+1)x(2d+1) kernel (as
in the authors' reference code). Per class c, over the whole dataset:
    BIoU_c = sum |G_d ∩ P_d| / sum |G_d ∪ P_d|
with G, P the ground-truth and predicted masks of c (ignore pixels removed from both).
The paper's d is 2% of the image diagonal; here d is a parameter (``boundary_px``, default 3).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..classes import CITYSCAPES_CLASSES, IGNORE_INDEX, THIN_CLASSES


class ConfusionMatrix:
    def __init__(self, num_classes: int):
        self.n = num_classes
        self.mat = np.zeros((num_classes, num_classes), dtype=np.int64)  # rows: truth, cols: prediction

    def update(self, truth: np.ndarray, pred: np.ndarray):
        if truth.shape != pred.shape:
            raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
        valid = truth != IGNORE_INDEX
        t, p = truth[valid].astype(np.int64), pred[valid].astype(np.int64)
        if t.size and (t.max() >= self.n or p.max() >= self.n):
            raise ValueError(f"class id out of range 0..{self.n - 1}")
        self.mat += np.bincount(t * self.n + p, minlength=self.n ** 2).reshape(self.n, self.n)

    def iou(self) -> np.ndarray:
        tp = np.diag(self.mat).astype(np.float64)
        union = self.mat.sum(0) + self.mat.sum(1) - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def present(self) -> np.ndarray:
        """Classes that occur in the ground truth (mIoU is averaged over these)."""
        return self.mat.sum(1) > 0

    def miou(self) -> float:
        iou = self.iou()[self.present()]
        return float(np.mean(iou)) if iou.size else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.mat.sum()
        return float(np.trace(self.mat) / total) if total else float("nan")


def boundary_region(mask: np.ndarray, d: int) -> np.ndarray:
    """Pixels of ``mask`` within ``d`` px of its contour (mask minus its erosion). The image border
    counts as contour: like the reference implementation (boundary-iou-api ``mask_to_boundary``:
    "pad image so mask truncated by the image border is also considered as boundary"), the mask is
    padded with one zero pixel before eroding, and that zero propagates ``d`` pixels inwards."""
    m = mask.astype(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:-1, 1:-1]
    return (m - eroded).astype(bool)


def nanmean(x) -> float | None:
    """Mean over the defined (non-NaN) values; None when there are none."""
    x = np.asarray(x, np.float64)
    x = x[~np.isnan(x)]
    return float(np.mean(x)) if x.size else None


class SegmentationMetrics:
    """Accumulates every metric ``fornet eval`` reports over a dataset."""

    def __init__(self, num_classes: int = 19, class_names=CITYSCAPES_CLASSES, boundary_px: int = 3,
                 thin_classes=THIN_CLASSES):
        self.cm = ConfusionMatrix(num_classes)
        self.names = list(class_names)
        self.d = boundary_px
        self.b_inter = np.zeros(num_classes, np.int64)
        self.b_union = np.zeros(num_classes, np.int64)
        self.thin = [self.names.index(c) for c in thin_classes if c in self.names]
        self.err_total = 0
        self.err_in_selected = 0
        self.selected_px = 0
        self.valid_px = 0

    def update(self, truth: np.ndarray, pred: np.ndarray, selected: np.ndarray | None = None):
        self.cm.update(truth, pred)
        valid = truth != IGNORE_INDEX
        for c in np.union1d(np.unique(truth[valid]), np.unique(pred[valid])):
            g = boundary_region(truth == c, self.d) & valid
            p = boundary_region(pred == c, self.d) & valid
            self.b_inter[c] += np.count_nonzero(g & p)
            self.b_union[c] += np.count_nonzero(g | p)
        if selected is not None:
            err = valid & (truth != pred)
            self.err_total += int(np.count_nonzero(err))
            self.err_in_selected += int(np.count_nonzero(err & selected))
            self.selected_px += int(np.count_nonzero(selected & valid))
            self.valid_px += int(np.count_nonzero(valid))

    def compute(self) -> dict:
        iou = self.cm.iou()
        present = self.cm.present()
        with np.errstate(divide="ignore", invalid="ignore"):
            biou = np.where(self.b_union > 0, self.b_inter / np.maximum(self.b_union, 1), np.nan)
        thin = [c for c in self.thin if present[c]]

        out = {
            "miou": self.cm.miou(),
            "pixel_accuracy": self.cm.pixel_accuracy(),
            "per_class_iou": {self.names[c]: float(iou[c]) for c in range(len(iou)) if present[c]},
            "boundary_iou": nanmean(biou[present]),
            "per_class_boundary_iou": {self.names[c]: float(biou[c]) for c in range(len(iou)) if present[c]},
            "boundary_px": self.d,
            "thin_miou": nanmean(iou[thin]),
            "thin_boundary_iou": nanmean(biou[thin]),
            "thin_classes": [self.names[c] for c in thin],
            "hard_region_recall": (self.err_in_selected / self.err_total) if self.err_total else None,
            "selected_fraction": (self.selected_px / self.valid_px) if self.valid_px else None,
        }
        return out
