"""Joint image + label transforms with opencv/numpy.

Hand-written (about 50 lines) rather than albumentations: opencv is already a dependency, the
four operations we need (scale, crop with ignore padding, flip, photometric jitter) are short, and
one fewer heavy dependency keeps the CPU install small.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..classes import IGNORE_INDEX


class TrainTransform:
    def __init__(self, crop=(352, 480), scale=(0.75, 1.5), base_scale: float = 1.0, flip: bool = True,
                 jitter: float = 0.3, seed: int | None = None):
        self.crop, self.scale, self.base_scale, self.flip, self.jitter = tuple(crop), scale, base_scale, flip, jitter
        self.rng = np.random.default_rng(seed)

    def __call__(self, img: np.ndarray, label: np.ndarray):
        rng = self.rng
        s = self.base_scale * rng.uniform(*self.scale)
        h, w = label.shape
        nh, nw = max(1, int(h * s + 0.5)), max(1, int(w * s + 0.5))
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (nw, nh), interpolation=cv2.INTER_NEAREST)
        ch, cw = self.crop
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:
            img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=0)
            label = cv2.copyMakeBorder(label, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
        y = rng.integers(0, label.shape[0] - ch + 1)
        x = rng.integers(0, label.shape[1] - cw + 1)
        img, label = img[y:y + ch, x:x + cw], label[y:y + ch, x:x + cw]
        if self.flip and rng.random() < 0.5:
            img, label = img[:, ::-1], label[:, ::-1]
        img = img.astype(np.float32)
        if self.jitter > 0:
            j = self.jitter
            img = img * rng.uniform(1 - j, 1 + j) + rng.uniform(-j, j) * 64  # contrast, brightness
            gray = img.mean(-1, keepdims=True)
            img = gray + (img - gray) * rng.uniform(1 - j, 1 + j)  # saturation
            img = np.clip(img, 0, 255)
        return np.ascontiguousarray(img), np.ascontiguousarray(label)
