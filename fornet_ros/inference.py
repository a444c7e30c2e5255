"""Segmenter: checkpoint -> labels / importance / confidence at the input image's resolution.

The only entry point the ROS node, the CLI and users' scripts need::

    seg = Segmenter()                       # the packaged default model, auto device
    result = seg(rgb_uint8_hxwx3)           # or seg([img_cam0, img_cam1]) for a batch
    result.labels, result.importance, result.confidence
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .checkpoint import ModelMeta, load_model
from .model import region_map_to_pixels


@dataclass
class Segmentation:
    labels: np.ndarray  # (H, W) uint8 class IDs
    importance: np.ndarray  # (H, W) float32 in [0, 1]: selector's region importance
    confidence: np.ndarray  # (H, W) float32 in [0, 1]: max softmax probability
    selected: np.ndarray  # (H, W) bool: inside a region refined by the Top-K branches


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in table:
        raise ValueError(f"precision must be auto, fp32, fp16 or bf16, got {precision!r}")
    if table[precision] is torch.float16 and device.type != "cuda":
        raise ValueError("fp16 inference needs a CUDA device; use fp32 (or bf16) on the CPU")
    return table[precision]


def validate_image(img, name: str = "image") -> np.ndarray:
    """Check one RGB image; returns it as (H, W, 3). Raises ValueError that says what is wrong."""
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(img).__name__}")
    if img.ndim == 2:
        raise ValueError(f"{name}: got a single-channel {img.shape} array; expected (H, W, 3) RGB")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H, W, 3) RGB, got {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"{name}: empty image {img.shape}")
    if img.dtype == np.uint8:
        return img
    if img.dtype in (np.float32, np.float64):
        if not np.isfinite(img).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
        if img.min() < 0 or img.max() > 1:
            raise ValueError(f"{name}: float images must be in [0, 1], got [{img.min():.3g}, {img.max():.3g}]")
        return img
    raise ValueError(f"{name}: dtype {img.dtype} not supported; use uint8 (0-255) or float32 in [0, 1]")


class Segmenter:
    """FoR-Net inference on RGB images of any size; outputs come back at the image's size.

    ``Segmenter(model, meta)`` wraps a model and its :class:`~fornet_ros.checkpoint.ModelMeta`;
    ``Segmenter.from_checkpoint(path)`` loads both (``path=None``: the packaged model)."""

    def __init__(self, model, meta: ModelMeta, device: str = "auto", precision: str = "auto",
                 input_size: tuple[int, int] | None = None, topk_ratio: float | None = None,
                 channels_last: bool = True):
        self.meta = meta
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.model = model.eval().to(self.device, self.dtype)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.classes = list(meta.classes)
        self.palette = [tuple(c) for c in meta.palette]
        self.mean = np.asarray(meta.mean, np.float32) * 255.0
        self.std = np.asarray(meta.std, np.float32) * 255.0
        size = tuple(input_size) if input_size is not None else tuple(meta.input_size)
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"input_size must be (H, W) with both >= 8, got {size}")
        self.input_size = (int(size[0]), int(size[1]))
        self.topk_ratio = topk_ratio

    @classmethod
    def from_checkpoint(cls, path=None, **kw) -> "Segmenter":
        """Load a checkpoint (``None``: the packaged default model); keywords as for ``Segmenter``."""
        model, meta = load_model(path)
        return cls(model, meta, **kw)

    @property
    def topk_ratio(self) -> float:
        """K in use. Setting ``None`` or a negative value selects the model's trained K (the one
        place this rule lives: the node and the CLI pass their "checkpoint's K" values through)."""
        return self._topk

    @topk_ratio.setter
    def topk_ratio(self, value: float | None):
        if value is None or float(value) < 0:
            value = self.model.cfg.topk_ratio
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"topk_ratio must be in [0, 1] (or < 0 for the model's own), got {value}")
        self._topk = value

    @property
    def cfg(self):
        return self.model.cfg

    def preprocess(self, images: list[np.ndarray]) -> torch.Tensor:
        h, w = self.input_size
        batch = np.empty((len(images), h, w, 3), np.float32)
        for i, img in enumerate(images):
            if img.shape[:2] != (h, w):  # resize before the float conversion: 4x fewer pixels
                img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR)
            batch[i] = (img.astype(np.float32) * (255.0 if img.dtype != np.uint8 else 1.0) - self.mean) / self.std
        x = torch.from_numpy(batch).permute(0, 3, 1, 2)  # NHWC memory = channels_last
        if not self.channels_last:
            x = x.contiguous()
        return x.to(self.device, self.dtype)

    @torch.inference_mode()
    def __call__(self, images, mode: str = "auto"):
        """One image (H, W, 3) -> :class:`Segmentation`; a list -> a list (one batched forward)."""
        single = isinstance(images, np.ndarray)
        imgs = [images] if single else list(images)
        if not imgs:
            raise ValueError("empty batch: no images given")
        imgs = [validate_image(im, f"image {i}") for i, im in enumerate(imgs)]
        out = self.model(self.preprocess(imgs), topk_ratio=self.topk_ratio, mode=mode)
        results = [self._postprocess(out, i, im.shape[:2]) for i, im in enumerate(imgs)]
        return results[0] if single else results

    def _postprocess(self, out, i: int, size: tuple[int, int]) -> Segmentation:
        """Upsample the logits (stride 4 in refined models, 8 otherwise) and arg-max at ``work`` =
        the smaller of the image and the network input size, then nearest-resize labels to the
        image. Hand-written with opencv because a 19-channel bilinear upsample + arg-max at
        1024x2048 costs ~170 ms in torch on this CPU, 4x the network itself; arg-maxing above the
        network's input size adds no information (docs/benchmarks.md)."""
        H, W = size
        wh, ww = (H, W) if H * W <= self.input_size[0] * self.input_size[1] else self.input_size
        logits = out["logits"][i].float()
        up = cv2.resize(logits.permute(1, 2, 0).cpu().numpy(), (ww, wh), interpolation=cv2.INTER_LINEAR)
        labels = up.argmax(-1).astype(np.uint8) if up.ndim == 3 else np.zeros((wh, ww), np.uint8)
        # Confidence = max softmax at the logits' resolution, bilinearly upsampled (a smooth map).
        conf = cv2.resize(logits.softmax(0).amax(0).cpu().numpy(), (W, H), interpolation=cv2.INTER_LINEAR)
        if (wh, ww) != (H, W):
            labels = cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST)
        regions = torch.cat([out["importance"][i:i + 1], out["selected"][i:i + 1]], 1).float()
        cells = region_map_to_pixels(regions, self.cfg.region_px, self.input_size, size)[0]
        return Segmentation(labels=labels, importance=cells[0].cpu().numpy().astype(np.float32),
                            confidence=np.clip(conf, 0.0, 1.0).astype(np.float32),
                            selected=cells[1].cpu().numpy() > 0.5)
