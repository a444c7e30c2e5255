"""Bring your own ONNX model: the description file that says how to run a segmentation model this
project did not export (no ROS, no onnxruntime imports: pure parsing and checks).

A FoR-Net export carries its classes, palette, normalisation and input size in its
``metadata_props`` (:mod:`fornet_ros.inference.export`). A model exported by another toolbox
(segmentation_models_pytorch, mmsegmentation/mmdeploy, torchvision, ...) carries none of that, so
it comes with a small YAML file **next to it, same stem**: ``model.onnx`` + ``model.yaml``::

    classes: [floor, wall, person]     # required; output channel / label value i is classes[i]
    palette: [[128, 64, 128], ...]     # optional, RGB per class (default: generated colours)
    input_size: [512, 512]             # [H, W]; optional when the graph's input H, W are fixed
    channel_order: rgb                 # rgb or bgr: the order the network expects
    input_layout: nchw                 # nchw or nhwc
    scale: 0.00392156862745098         # x = pixel (0..255) * scale, then (x - mean) / std  (default 1/255)
    mean: [0.485, 0.456, 0.406]        # per channel, in the network's channel order (default 0)
    std: [0.229, 0.224, 0.225]         # (default 1)
    output: logits                     # logits (N, C, h, w; any h, w), labels (N, h, w) / (N, 1, h, w),
                                       # or probability (N, 1, h, w): one class's sigmoid output, see below
    threshold: 0.5                     # probability only: pixels above it are classes[1] (default 0.5)
    output_name: logits                # optional: default the graph's first output
    input_name: input                  # optional: default the graph's only input
    name: unet_r18_floor               # optional: shown in /diagnostics (default: the file's stem)

Unknown keys are errors (a misspelt ``chanel_order`` must not silently run the model on RGB).
One-channel models (a foreground against the rest: DBNet, U²-Net, selfie segmentation, smp with
``classes=1``) are ``output: probability`` with ``classes: [background, <name>]``: the graph ends in a
sigmoid, a pixel is ``<name>`` where the probability is above ``threshold``, and the confidence map is
max(p, 1 - p) at threshold 0.5. A one-channel ``logits`` output (no sigmoid) is refused: argmax over
one channel is always class 0.
mmsegmentation gives ``mean``/``std`` in 0..255 units: write ``scale: 1``; smp/torchvision use
ImageNet statistics in 0..1 units: keep the default scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, ModelMeta

LAYOUTS = ("nchw", "nhwc")
CHANNEL_ORDERS = ("rgb", "bgr")
OUTPUT_KINDS = ("logits", "labels", "probability")
KEYS = {"classes", "palette", "input_size", "channel_order", "input_layout", "scale", "mean", "std", "output",
        "output_name", "input_name", "name", "threshold"}
ONE_CHANNEL = ("a one-channel output needs output: probability (the graph ends in a sigmoid) with classes: "
               "[background, <name>]")


@dataclass(frozen=True)
class OnnxIO:
    """How to feed a foreign graph and read its answer (the normalisation is in the ModelMeta)."""

    channel_order: str = "rgb"
    input_layout: str = "nchw"
    output: str = "logits"
    input_name: str | None = None  # None: the graph's only input
    output_name: str | None = None  # None: the graph's first output
    threshold: float | None = None  # output probability only: classes[1] above it (default 0.5)


@dataclass(frozen=True)
class ForeignConfig:
    """What the rest of the package reads of a model's config (``Segmenter.cfg``) for a model that
    is not FoR-Net: its name, its classes, no Top-K focus stage (K is 1: the whole image)."""

    variant: str
    num_classes: int
    focus: bool = False
    topk_ratio: float = 1.0


@dataclass(frozen=True)
class ModelDescription:
    meta: ModelMeta  # classes, palette, RGB-order mean/std in 0..1 units (as FoR-Net's), input_size
    io: OnnxIO
    name: str
    input_size_given: bool  # False: input_size comes from the graph


def description_path(model_path) -> Path:
    """The description file of ``model_path``: same folder, same stem, ``.yaml``."""
    return Path(model_path).with_suffix(".yaml")


def generated_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """Distinct colours for ``n`` classes (the same rule as ModelMeta.default's)."""
    return tuple(((i * 67) % 256, (i * 131) % 256, (i * 199) % 256) for i in range(n))


def _numbers(d: dict, key: str, default, n: int, positive: bool = False) -> tuple[float, ...]:
    v = d.get(key, default)
    if not isinstance(v, (list, tuple)) or len(v) != n or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        raise ValueError(f"{key} must be {n} finite numbers, got {v!r}")
    if positive and min(v) <= 0:
        raise ValueError(f"{key} must be > 0, got {list(v)}")
    return tuple(float(x) for x in v)


def _choice(d: dict, key: str, choices: tuple[str, ...]) -> str:
    v = str(d.get(key, choices[0])).lower()
    if v not in choices:
        raise ValueError(f"{key} must be one of {', '.join(choices)}, got {d.get(key)!r}")
    return v


def _threshold(d: dict, n_classes: int) -> float | None:
    """The probability threshold (None for other outputs); checks that output, classes and threshold agree."""
    output = str(d.get("output", OUTPUT_KINDS[0])).lower()
    if output != "probability":
        if "threshold" in d:
            raise ValueError(f"threshold applies to output: probability only, not output: {output}")
        if output == "logits" and n_classes == 1:
            raise ValueError(f"one class with output: logits is always that class; {ONE_CHANNEL}")
        return None
    if n_classes != 2:
        raise ValueError(f"output: probability needs classes: [background, <name>] (2 names), got {n_classes}")
    t = d.get("threshold", 0.5)
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t < 1:
        raise ValueError(f"threshold must be a number in (0, 1), got {t!r}")
    return float(t)


def output_problem(io: OnnxIO, shape, n_classes: int) -> str | None:
    """What is wrong with a graph output of ``shape`` (ints, or names for dynamic axes) for the
    description's ``output`` and class count; None when it fits."""
    channels = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None
    if io.output == "logits":
        if len(shape) != 4:
            return f"has shape {shape}; logits must be (N, C, h, w)"
        if channels == 1:
            return f"has shape {shape}: one channel; {ONE_CHANNEL}"
        if channels is not None and channels != n_classes:
            return f"has {channels} channels but the description lists {n_classes} classes"
    elif len(shape) not in (3, 4) or channels not in (None, 1):
        kind = "labels must be (N, h, w) or" if io.output == "labels" else "probability must be"
        return f"has shape {shape}; {kind} (N, 1, h, w)"
    return None


def to_network_output(y: np.ndarray, io: OnnxIO, n_classes: int) -> np.ndarray:
    """A foreign graph's answer as the Segmenter reads it: float32 logits (N, C, h, w), or, for a
    labels output, uint8 labels (N, h, w) with out-of-range values 255 (ignore). A probability p
    becomes the two logits (0, logit p - logit threshold): their arg-max is p > threshold, their
    softmax max(p, 1 - p) at threshold 0.5, and they upsample smoothly before the arg-max."""
    if io.output == "labels":
        y = y.reshape(y.shape[0], *y.shape[-2:])
        return np.where((y >= 0) & (y < n_classes), y, 255).astype(np.uint8)
    if io.output == "probability":
        eps = 1e-6
        p = np.clip(np.nan_to_num(y.reshape(y.shape[0], 1, *y.shape[-2:]).astype(np.float32), nan=0.0), eps, 1 - eps)
        t = io.threshold
        z = np.log(p / (1 - p)) - np.float32(math.log(t / (1 - t)))
        return np.concatenate([np.zeros_like(z), z], axis=1)
    return y.astype(np.float32, copy=False)


def parse_description(d, stem: str = "model") -> ModelDescription:
    """A description dict (the YAML) -> :class:`ModelDescription`; ValueError says what is wrong."""
    if not isinstance(d, dict):
        raise ValueError("expected a mapping (classes: [...], ...)")
    unknown = sorted(set(d) - KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: {sorted(KEYS)}")
    classes = d.get("classes")
    if (not isinstance(classes, list) or not classes
            or not all(isinstance(c, str) and c.strip() for c in classes)):
        raise ValueError(f"classes must be a non-empty list of names, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes}")
    if len(classes) > 255:
        raise ValueError(f"at most 255 classes (label images are mono8, 255 = ignore), got {len(classes)}")
    palette = d.get("palette")
    if palette is None:
        palette = generated_palette(len(classes))
    elif (not isinstance(palette, list) or len(palette) != len(classes) or not all(
            isinstance(c, (list, tuple)) and len(c) == 3 and all(type(v) is int and 0 <= v <= 255 for v in c)
            for c in palette)):
        raise ValueError(f"palette must be {len(classes)} [r, g, b] colours (0..255), one per class")
    io = OnnxIO(channel_order=_choice(d, "channel_order", CHANNEL_ORDERS),
                input_layout=_choice(d, "input_layout", LAYOUTS), output=_choice(d, "output", OUTPUT_KINDS),
                input_name=None if d.get("input_name") is None else str(d["input_name"]),
                output_name=None if d.get("output_name") is None else str(d["output_name"]),
                threshold=_threshold(d, len(classes)))
    scale = d.get("scale", 1.0 / 255.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a number > 0, got {scale!r}")
    mean = _numbers(d, "mean", (0.0, 0.0, 0.0), 3)
    std = _numbers(d, "std", (1.0, 1.0, 1.0), 3, positive=True)
    if io.channel_order == "bgr":  # the description's order is the network's; ModelMeta's is RGB
        mean, std = mean[::-1], std[::-1]
    size = d.get("input_size")
    if size is not None:
        size = _numbers(d, "input_size", None, 2)
        if any(v != int(v) or v < 8 for v in size):
            raise ValueError(f"input_size must be [H, W] integers >= 8, got {d['input_size']}")
        size = (int(size[0]), int(size[1]))
    # (pixel * scale - mean) / std == (pixel - mean / scale) / (std / scale): ModelMeta keeps
    # mean and std in 0..1 units of the 0..255 pixel (x 255 in the Segmenter)
    meta = ModelMeta(tuple(classes), tuple(tuple(c) for c in palette),
                     tuple(m / (scale * 255.0) for m in mean), tuple(s / (scale * 255.0) for s in std),
                     size or (512, 512))
    return ModelDescription(meta, io, str(d.get("name") or stem), size is not None)


def read_description(model_path) -> ModelDescription:
    """The description next to ``model_path``; CheckpointError naming the file and the problem."""
    import yaml
    path = description_path(model_path)
    if not path.is_file():
        raise CheckpointError(f"{model_path} has no fornet_ros metadata and no model description {path} beside it "
                              "(a YAML with classes, input_size, mean/std, channel_order, ...: docs/deploy.md)")
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CheckpointError(f"model description {path}: {' '.join(str(e).split())}") from e
    try:
        return parse_description(d, Path(model_path).stem)
    except (ValueError, CheckpointError) as e:
        raise CheckpointError(f"model description {path}: {e}") from e
