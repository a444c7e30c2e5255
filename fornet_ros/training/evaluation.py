"""One evaluation loop for every caller (training validation, ``fornet eval``, ``fornet bag eval``,
the demo): a :class:`~fornet_ros.inference.Segmenter` over (image, label) samples, scored by
:class:`~fornet_ros.training.metrics.SegmentationMetrics` at the label's full resolution."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from ..errors import FornetError
from .metrics import SegmentationMetrics


class SampleError(FornetError):
    """A sample cannot be scored (label and image sizes differ)."""


def dataset_samples(dataset, limit: int | None = None):
    """(image, label) pairs of a dataset with ``load(i)`` (all of :mod:`fornet_ros.training.datasets`)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(n):
        yield dataset.load(i)


def evaluate(segmenter, samples: Iterable[tuple[np.ndarray, np.ndarray]], boundary_px: int = 3,
             progress: bool = True, limit: int | None = None, on_scored=None, prediction_lut=None) -> dict:
    """Score ``segmenter`` on ``samples``: (RGB uint8 HxWx3, train-id label uint8 HxW) pairs; a
    label may be ``None`` (the frame is segmented and timed but not scored). Each image goes
    through the segmenter at its input size; predictions come back at the label's resolution.
    ``on_scored(label, result)`` is called for every scored frame (e.g. the costmap score).
    ``prediction_lut`` maps predictions into a coarse dataset's classes before scoring (the
    dataset's ``prediction_lut``: a truck on a CamVid ``car`` pixel is right).

    Returns the metrics of :meth:`SegmentationMetrics.compute` plus ``images`` (segmented),
    ``scored``, ``images_per_s`` (segmenter time only), ``topk_ratio``, ``input_size``, ``variant``."""
    metrics = SegmentationMetrics(len(segmenter.classes), segmenter.classes, boundary_px)
    total = len(samples) if hasattr(samples, "__len__") else None
    if limit is not None and total is not None:
        total = min(total, limit)
    images = scored = 0
    t_model = 0.0
    for img, label in tqdm(samples, total=total, desc="eval", disable=not progress, dynamic_ncols=True):
        t0 = time.perf_counter()
        res = segmenter(img)
        t_model += time.perf_counter() - t0
        images += 1
        if label is not None:
            if label.shape != res.labels.shape:
                raise SampleError(f"sample {images - 1}: label {label.shape} and image {res.labels.shape[:2]} sizes differ")
            pred = res.labels if prediction_lut is None else prediction_lut[res.labels]
            metrics.update(label, pred, res.selected)
            scored += 1
            if on_scored is not None:
                on_scored(label, res)
        if limit is not None and images >= limit:
            break
    out = metrics.compute() if scored else {}
    k = segmenter.topk_ratio
    out.update(images=images, scored=scored, images_per_s=images / t_model if t_model else None,
               topk_ratio=k if isinstance(k, float) else {"adaptive": vars(k)}, input_size=list(segmenter.input_size),
               variant=segmenter.cfg.variant)
    return out


def evaluate_with_costmap(segmenter, samples, camera, pose, layer_config: str | None = None, boundary_px: int = 3,
                          progress: bool = True, limit: int | None = None) -> dict:
    """:func:`evaluate`, plus ``result['costmap']``: the semantic costmap the predicted labels make,
    scored against the one the ground truth makes (:class:`fornet_ros.mapping.costmap_score.CostmapScorer`;
    ``camera`` a :class:`~fornet_ros.mapping.CameraModel`, ``pose`` a :class:`~fornet_ros.mapping.Pose`,
    ``layer_config`` a layer YAML or None for the built-in layers). For CamVid drive 0006R0 use the
    clip's calibration: ``fornet_ros.tools.clip.camera_model()``, ``fornet_ros.tools.clip.camera_pose()``."""
    from ..mapping import load_layer_config
    from ..mapping.costmap_score import CostmapScorer
    scorer = CostmapScorer(camera, pose, load_layer_config(layer_config, segmenter.classes))
    res = evaluate(segmenter, samples, boundary_px, progress, limit,
                   on_scored=lambda label, r: scorer.update(r.labels, label))
    res["costmap"] = scorer.compute() if scorer.score.frames else None
    return res
def trained_on_scored_data(train: dict | None, split: str, drives=None) -> str | None:
    """A warning when a checkpoint's ``train`` record says it trained on the data being scored
    (``split``, restricted to ``drives`` when given), else None. Reads ``train["splits"]`` (split
    names) and ``train["exclude_drives"]`` (drive-name prefixes left out, or None); a checkpoint that
    does not record its splits (older ones) gets no warning: nothing is known."""
    splits = (train or {}).get("splits")
    if not splits or split not in splits:
        return None
    excluded = list((train or {}).get("exclude_drives") or [])
    held_out = lambda d: any(d.startswith(x) for x in excluded)  # noqa: E731 - drive names are prefixes
    if drives and all(held_out(d) for d in drives):
        return None
    where = f"split {split!r}" + (f" drives {' '.join(drives)}" if drives else "")
    hint = (f"score the held-out drive(s) with --drives {' '.join(excluded)}" if excluded
            else "score a split it did not train on")
    return (f"warning: this checkpoint trained on {where} (its train record: splits {list(splits)}, excluded "
            f"drives {excluded or 'none'}); this is not a hold-out score - {hint}")

