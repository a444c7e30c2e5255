"""Self mask: the pixels of a camera's image that show the robot itself.

A camera mounted on the robot often sees part of it (a car's hood at the bottom of every
Cityscapes frame, a bumper, a sensor mount). The network labels those pixels as what they look
like (the hood as *car*), and projected onto the ground they become obstacles right in front of
the robot. A :class:`SelfMask` names those pixels, per camera, so they never reach the costmap or
the labelled points: :meth:`SelfMask.apply` sets them to the ignore label (255), which the grids
leave unknown and the point clouds leave unlabelled. The label image itself is not changed.

Given as rows from the bottom of the image, as a mask image (any non-zero pixel is the robot;
resized nearest-neighbour to the frame when its size differs), or both (their union).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..classes import IGNORE_INDEX
from ..errors import FornetError


class SelfMaskError(FornetError):
    """A self mask that cannot be used (message: one line naming the setting)."""


class SelfMask:
    """The robot's own pixels in one camera's image: the bottom ``rows`` rows and/or the non-zero
    pixels of the mask image ``image`` (a path). Empty (the default) masks nothing."""

    def __init__(self, rows: int = 0, image: str = "", *, name: str = "self mask"):
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise SelfMaskError(f"{name}: rows must be an integer >= 0, got {rows!r}")
        self.rows, self.image, self.name = rows, image, name
        self._image = None
        if image:
            path = Path(image)
            if not path.is_file():
                raise SelfMaskError(f"{name}: mask image {image!r} does not exist")
            mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if mask is None:
                raise SelfMaskError(f"{name}: {image!r} is not an image OpenCV can read (PNG, JPEG, ...)")
            self._image = (mask.reshape(*mask.shape[:2], -1) != 0).any(-1)
        self._cache: dict[tuple[int, int], np.ndarray | None] = {}

    @property
    def empty(self) -> bool:
        return self.rows == 0 and self._image is None

    def describe(self) -> str:
        """One phrase for logs and reports: 'the bottom 180 rows and the non-zero pixels of hood.png'."""
        parts = ([f"the bottom {self.rows} rows"] if self.rows else []) + (
            [f"the non-zero pixels of {Path(self.image).name}"] if self._image is not None else [])
        return " and ".join(parts) or "nothing"

    def pixels(self, shape) -> np.ndarray | None:
        """(H, W) bool, True on the robot's own pixels of an image of ``shape`` ((H, W, ...)), or None
        when the mask is empty. Built once per image size."""
        h, w = int(shape[0]), int(shape[1])
        if (h, w) not in self._cache:
            if self.empty:
                self._cache[(h, w)] = None
            else:
                m = np.zeros((h, w), bool)
                m[max(0, h - self.rows):] = True
                if self._image is not None:
                    img = self._image
                    if img.shape != (h, w):
                        img = cv2.resize(img.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                    m |= img
                self._cache[(h, w)] = m
        return self._cache[(h, w)]

    def outline(self, shape) -> list[np.ndarray]:
        """The mask's outline in an image of ``shape``: a list of (N, 2) int32 pixel (x, y) polygons,
        ready for ``cv2.polylines`` (what a report draws over the frame); [] when empty."""
        m = self.pixels(shape)
        if m is None:
            return []
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return [c.reshape(-1, 2) for c in contours]

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """``labels`` with the robot's pixels set to the ignore label (a copy; ``labels`` itself when
        the mask is empty)."""
        m = self.pixels(labels.shape)
        if m is None:
            return labels
        out = labels.copy()
        out[m] = IGNORE_INDEX
        return out
