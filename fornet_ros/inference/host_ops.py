"""The Segmenter's pre- and post-processing on the CPU (``processing="opencv"``), the host-side
counterpart of :mod:`.device_ops`.

Three steps cost as much as a fifth of the network on a 2-core CPU (``docs/benchmarks.md``, the
end-to-end table), and each has a cheaper form, two of them exact:

- **Shrinking** the camera frame (:func:`shrink`): OpenCV's INTER_AREA has a fast path for integer
  factors only. 1024x2048 -> 512x1024 takes 0.5 ms, -> 448x896 (a factor of 2.29) 4.5-4.8 ms on
  this CPU, quiet (``docs/bench/speed_r4f``). Halving exactly (the fast path) while the frame is at
  least twice the input, then one INTER_AREA step of less than 2x, averages the same pixels to within
  two grey levels (a halving rounds to uint8; a source pixel split across two outputs is split a
  little differently) in 2.1 ms. :func:`resize_frame` applies it per axis: area along a side that
  shrinks, bilinear along one that grows. :mod:`.device_ops` composes the same steps, so the GPU
  path agrees.

- **Normalising** a uint8 frame, ``(x - mean) / std`` per channel, is a 256-entry table per channel:
  :func:`normalise` is one ``cv2.LUT`` pass into the batch instead of numpy's cast, subtract,
  divide and copy (four passes, three temporaries). Same float32 values.
- **Arg-maxing the bilinearly upsampled logits** (:func:`upsampled_argmax`): the 19-channel upsample
  and the arg-max over it touch every output pixel 19 times. But a bilinear output pixel is a convex
  combination of its four source pixels, and when those four share their arg-max ``c`` (``v_j[c] >=
  v_j[d]`` for every corner ``j`` and class ``d``), the combination has arg-max ``c`` too. On street
  frames ~93 % of the output pixels lie in such uniform cells (measured on Frankfurt val at stride 4):
  they take the source label; only the others are interpolated (OpenCV's INTER_LINEAR taps exactly)
  and arg-maxed, in OpenCV's order of operations. The labels equal ``cv2.resize(..., INTER_LINEAR).argmax(-1)``
  but where two classes tie to float rounding (10 pixels in 46 million over 195 test maps, OpenCV's
  fused multiply-adds round differently; ``test/test_host_ops.py``). Hand-written because neither OpenCV nor numpy has a fused
  upsample + arg-max.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


def area_halvings(src: tuple[int, int], dst: tuple[int, int]) -> int:
    """How many exact halvings :func:`shrink` does before its last INTER_AREA step: while both sides
    are even and at least twice the target's (the one place this rule lives; :mod:`.device_ops` too)."""
    (h, w), k = src, 0
    while h % 2 == 0 and w % 2 == 0 and h >= 2 * dst[0] and w >= 2 * dst[1]:
        h, w, k = h // 2, w // 2, k + 1
    return k


def shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> (h, w, C) = ``size``, area-averaged: exact halvings, then INTER_AREA (see above)."""
    for _ in range(area_halvings(img.shape[:2], size)):
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return img if img.shape[:2] == tuple(size) else cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def area_target(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int] | None:
    """The size :func:`resize_frame`'s area step shrinks a ``src`` frame to on its way to ``dst``: each
    side that shrinks at the target's, each that grows kept; None when no side shrinks (the one place
    this per-axis rule lives; :mod:`.device_ops` too)."""
    (sh, sw), (h, w) = src, dst
    return (min(sh, h), min(sw, w)) if sh > h or sw > w else None


def resize_frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The camera frame to ``size`` (h, w): area-averaged (:func:`shrink`) along each side that
    shrinks, bilinear (INTER_LINEAR) along each that grows; a frame of that size is returned as is."""
    if (area := area_target(img.shape[:2], size)) is not None:
        img = shrink(img, area)
    h, w = size
    return img if img.shape[:2] == (h, w) else cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


@lru_cache(maxsize=16)
def normalise_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(1, 256, 3) float32: entry ``v`` of channel ``c`` is ``(v - mean[c]) / std[c]`` (0-255 units),
    the same float32 arithmetic as the numpy form."""
    v = np.arange(256, dtype=np.float32)[:, None]
    return ((v - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).reshape(1, 256, 3)


def normalise(img: np.ndarray, mean: np.ndarray, std: np.ndarray, out: np.ndarray) -> None:
    """Write the normalised ``img`` (H, W, 3; uint8, or float in [0, 1]) into ``out`` (H, W, 3 float32)."""
    if img.dtype == np.uint8:
        out[...] = cv2.LUT(img, normalise_table(tuple(map(float, mean)), tuple(map(float, std))))
    else:
        out[...] = (img.astype(np.float32) * 255.0 - mean) / std


@lru_cache(maxsize=16)
def linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV INTER_LINEAR's source taps for each of ``dst`` outputs along one axis: (i0, i1, f),
    output = (1 - f) * in[i0] + f * in[i1] (half-pixel centres, clamped at the edges as
    ``cv::resize`` does; its 2x area shortcut gives the same weights)."""
    s = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    i0 = np.floor(s).astype(np.intp)
    f = (s - i0).astype(np.float32)
    low, high = i0 < 0, i0 >= src - 1
    i0[low], f[low] = 0, 0
    i0[high], f[high] = src - 1, 0
    return i0, np.minimum(i0 + 1, src - 1), f


@lru_cache(maxsize=16)
def _gather_index(h: int, w: int, H: int, W: int) -> np.ndarray:
    """(H, W) flat index of each output pixel's top-left tap in an (h, w) map."""
    y0, x0 = linear_taps(h, H)[0], linear_taps(w, W)[0]
    return y0[:, None] * w + x0[None, :]


@lru_cache(maxsize=16)
def _runs(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per source index ``i``: the first output index whose first tap is ``i`` and how many follow it
    (a contiguous run: the taps never go back; 0 where no output starts at ``i``), and every output's
    fraction (``linear_taps``' ``f``)."""
    i0, _, f = linear_taps(src, dst)
    counts = np.bincount(i0, minlength=src)
    return np.concatenate(([0], np.cumsum(counts)[:-1])), counts, f


def upsampled_argmax(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) float logits -> (H, W) uint8 arg-max of their bilinear upsampling to ``size``,
    without upsampling the uniform cells (module docstring). The other cells are interpolated as
    blocks, one batch of blocks per run shape: a cell's four corners, then its rows x columns of
    outputs, in OpenCV's order (along x in each source row, then along y)."""
    c, h, w = logits.shape
    H, W = size
    # (h, w, C), class scores contiguous per pixel: free for a channels-last output (torch's), one copy
    # for a channels-first one (ONNX Runtime's), whose arg-max over a strided axis cost 1.3 ms more
    hwc = np.ascontiguousarray(logits.transpose(1, 2, 0))
    low = hwc.argmax(-1).astype(np.uint8)
    uniform = np.ones((h, w), bool)  # cell (i, j): taps (i, j), (i+1, j), (i, j+1), (i+1, j+1), clamped
    uniform[:-1] &= low[:-1] == low[1:]
    uniform[:, :-1] &= low[:, :-1] == low[:, 1:]
    uniform[:-1, :-1] &= low[:-1, :-1] == low[1:, 1:]
    labels = low.ravel().take(_gather_index(h, w, H, W))
    cy, cx = np.nonzero(~uniform)
    if not len(cy):
        return labels
    (y_first, y_count, fy_all), (x_first, x_count, fx_all) = _runs(h, H), _runs(w, W)
    scores = hwc.reshape(h * w, c)  # a row of class scores per source pixel
    shape = y_count[cy] * (W + 1) + x_count[cx]  # a cell's run lengths (rows, columns) as one key
    # One block per run shape: interior cells cover (H/h) x (W/w) outputs, edge cells (clamped taps)
    # more or fewer; padding every cell to the longest run did 2.25x the work at 96x192 -> 384x768.
    for key in np.unique(shape):
        ry, rx = divmod(int(key), W + 1)
        if not (ry and rx):
            continue
        sel = shape == key
        gy, gx = cy[sel], cx[sel]
        rows = y_first[gy][:, None] + np.arange(ry)  # (cells, ry) output rows
        cols = x_first[gx][:, None] + np.arange(rx)  # (cells, rx) output columns
        fy, fx = fy_all[rows][:, :, None, None], fx_all[cols][:, :, None]
        r0, r1, c0, c1 = gy * w, np.minimum(gy + 1, h - 1) * w, gx, np.minimum(gx + 1, w - 1)
        top = scores[r0 + c0][:, None] * (1 - fx)  # (cells, columns, C)
        top += scores[r0 + c1][:, None] * fx
        bottom = scores[r1 + c0][:, None] * (1 - fx)
        bottom += scores[r1 + c1][:, None] * fx
        v = top[:, None] * (1 - fy)  # (cells, rows, columns, C)
        v += bottom[:, None] * fy
        labels[rows[:, :, None], cols[:, None, :]] = v.argmax(-1)
    return labels
