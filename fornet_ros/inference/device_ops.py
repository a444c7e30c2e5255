"""The Segmenter's pre- and post-processing as torch ops, so that a frame on a GPU stays there.

On a GPU the network is a few milliseconds while resizing the camera frame, normalising it in
numpy, copying every logit to the host and arg-maxing with OpenCV cost 4-10x that (issue #20).
Here the uint8 frame is uploaded once (through a pinned host buffer, non-blocking), resized,
normalised and cast on the device; the logits are upsampled, arg-maxed and turned into the
confidence and importance maps on the device, and only the uint8 maps asked for come back.

Each step mirrors the OpenCV path of :class:`~fornet_ros.inference.Segmenter` (same resize kind,
same letterbox crop, same arg-max resolution), so the two agree: labels identical up to ties,
maps within one grey level (``test/test_device_ops.py``, on the CPU). Shrinking is the OpenCV
path's :func:`~.host_ops.shrink` (exact halvings, then INTER_AREA): each output pixel averages the
source pixels it covers, weighted by the share of each it covers (two matrix products,
:func:`area_matrix`, the halvings composed into them; torch's own ``area`` mode is an adaptive
average pool that counts partly covered pixels whole, which moved the pretrained default's labels
on 1 % of the pixels), rounded to uint8 as OpenCV does for a uint8 frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .host_ops import area_halvings, area_target


class Uploader:
    """numpy image -> device tensor. On CUDA through one pinned host buffer per batch slot, copied
    with ``non_blocking``; a slot's buffer is rewritten only after its previous copy finished."""

    def __init__(self, device: torch.device):
        self.device = device
        self._pinned: dict[int, tuple[torch.Tensor, torch.cuda.Event]] = {}

    def __call__(self, slot: int, img: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(img))
        if self.device.type != "cuda":
            return t
        buf, done = self._pinned.get(slot, (None, None))
        if buf is None or buf.shape != t.shape or buf.dtype != t.dtype:
            buf, done = torch.empty(t.shape, dtype=t.dtype, pin_memory=True), torch.cuda.Event()
            self._pinned[slot] = buf, done
        else:
            done.synchronize()
        buf.copy_(t)
        out = buf.to(self.device, non_blocking=True)
        done.record()
        return out


def _area_weights(n: int, m: int) -> torch.Tensor:
    """(m, n) float64: output i covers source [i n/m, (i+1) n/m), each source pixel weighted by the
    length of it covered, normalised (cv2.INTER_AREA)."""
    s = n / m
    lo = torch.arange(m, dtype=torch.float64)[:, None] * s
    j = torch.arange(n, dtype=torch.float64)[None, :]
    return (torch.minimum(lo + s, j + 1) - torch.maximum(lo, j)).clamp(min=0) / s


@lru_cache(maxsize=32)
def area_matrix(n: int, m: int, device, halvings: int = 0) -> torch.Tensor:
    """(m, n) weights of an area shrink of an axis of n pixels to m <= n, after ``halvings`` exact
    halvings (:func:`~.host_ops.shrink`'s steps, composed into one matrix: k halvings of even sides
    are one 2^k box average). Cached per (size, device): built and uploaded once per camera size,
    not per frame."""
    if not halvings:
        return _area_weights(n, m).float().to(device)
    box = _area_weights(n, n >> halvings)  # k exact halvings of even sides = one 2^k box average
    return (_area_weights(n >> halvings, m) @ box).float().to(device)


def area_resize(t: torch.Tensor, size) -> torch.Tensor:
    """(H, W, C) float -> (h, w, C) with h <= H, w <= W: the area average of :func:`~.host_ops.shrink`."""
    k = area_halvings(tuple(t.shape[:2]), tuple(size))
    wy, wx = area_matrix(t.shape[0], size[0], t.device, k), area_matrix(t.shape[1], size[1], t.device, k)
    return torch.einsum("ih,hwc,jw->ijc", wy, t, wx)


def preprocess(frames, boxes, input_size, mean: torch.Tensor, std: torch.Tensor, dtype: torch.dtype,
               channels_last: bool = True) -> torch.Tensor:
    """Device frames (H, W, 3) uint8 (0-255) or float (0-1) -> the normalised batch (N, 3, h, w) in
    ``dtype``; ``boxes[i]`` = (y0, x0, nh, nw) where frame i lands (letterbox padding: 0 after
    normalisation, the mean colour). Resize as the OpenCV path (:func:`~.host_ops.resize_frame`):
    area along each side that shrinks, bilinear along each that grows; done in float32
    (``mean``/``std``: (3,) on the device, in 0-255 units)."""
    h, w = input_size
    nhwc = torch.zeros((len(frames), h, w, 3), device=mean.device, dtype=torch.float32)
    for i, (img, (y0, x0, nh, nw)) in enumerate(zip(frames, boxes)):
        t = img.float() if img.dtype == torch.uint8 else img.float() * 255.0
        if (area := area_target(tuple(img.shape[:2]), (nh, nw))) is not None:
            t = area_resize(t, area)
            if img.dtype == torch.uint8:
                t = (t + 0.5).floor()  # OpenCV resizes a uint8 frame into uint8, rounding halves up
        if tuple(t.shape[:2]) != (nh, nw):
            t = F.interpolate(t.permute(2, 0, 1)[None], (nh, nw), mode="bilinear",
                              align_corners=False)[0].permute(1, 2, 0)
        nhwc[i, y0:y0 + nh, x0:x0 + nw] = (t - mean) / std
    x = nhwc.permute(0, 3, 1, 2)  # NCHW view of NHWC memory = channels_last
    return x.to(dtype) if channels_last else x.contiguous().to(dtype)


def _resize(t: torch.Tensor, size, mode: str) -> torch.Tensor:
    """(C, h, w) -> (C, *size); bilinear with half-pixel centres (cv2.INTER_LINEAR) or nearest
    with floor(dst * src / dst) (cv2.INTER_NEAREST)."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(t[None], tuple(size), mode=mode, **kw)[0]


def postprocess(logits, importance, selected, size, input_size, box, region_px: int, outputs) -> dict:
    """One image's outputs on the device from its network outputs (``logits`` (C, h/s, w/s),
    ``importance`` / ``selected`` (1, Hr, Wr)): ``labels`` (H, W) uint8 always; ``importance`` and
    ``confidence`` as uint8 round(255 m), ``selected`` as bool, when named in ``outputs``."""
    H, W = size
    (h, w), (y0, x0, nh, nw) = input_size, box
    logits = logits.float()
    if (nh, nw) != (h, w):  # letterbox: keep the logits over the image's part of the input only
        logits = _resize(logits, (h, w), "bilinear")[:, y0:y0 + nh, x0:x0 + nw]
    work = (H, W) if H * W <= nh * nw else (nh, nw)  # arg-maxing above the input size adds nothing
    labels = _resize(logits, work, "bilinear").argmax(0).to(torch.uint8)
    out = {"labels": _resize(labels[None], (H, W), "nearest")[0]}
    if "confidence" in outputs:  # max softmax = 1 / sum(exp(l - max l)), upsampled bilinearly
        conf = 1.0 / torch.exp(logits - logits.amax(0, keepdim=True)).sum(0, keepdim=True)
        out["confidence"] = (_resize(conf, (H, W), "bilinear")[0].clamp(0, 1) * 255).round().to(torch.uint8)
    if {"importance", "selected"} & set(outputs):
        P = region_px  # a region = P x P network-input pixels
        maps = torch.cat([importance, selected]).float().repeat_interleave(P, 1).repeat_interleave(P, 2)
        maps = _resize(maps[:, y0:y0 + nh, x0:x0 + nw], (H, W), "nearest")
        if "importance" in outputs:
            out["importance"] = (maps[0] * 255).round().to(torch.uint8)
        if "selected" in outputs:
            out["selected"] = maps[1] > 0.5
    return out


def download(maps: list[dict]) -> list[dict]:
    """Device tensors -> numpy, all copies queued at once (pinned, non-blocking on CUDA) and one
    synchronisation; on the CPU the tensors' own memory."""
    if not maps or next(iter(maps[0].values())).device.type != "cuda":
        return [{k: v.numpy() for k, v in m.items()} for m in maps]
    host = [{k: torch.empty(v.shape, dtype=v.dtype, pin_memory=True).copy_(v, non_blocking=True)
             for k, v in m.items()} for m in maps]
    torch.cuda.current_stream().synchronize()
    return [{k: v.numpy() for k, v in m.items()} for m in host]
