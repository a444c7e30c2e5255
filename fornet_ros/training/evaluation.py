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
def trained_on_scored_data(train: dict | None, split: str, drives=None, dataset: str | None = None,
                           root=None) -> str | None:
    """A warning when a checkpoint's ``train`` record says it trained on the data being scored
    (``dataset`` type at ``root``, ``split``, restricted to ``drives`` when given), else None.

    A record of several datasets (``train["datasets"]``, written since multi-dataset training) is
    matched entry by entry: same dataset type, same source (the ``From`` line of the ``SOURCE.md``
    beside the data, else the folder name), a split it trained on. A one-dataset record compares its
    ``dataset`` type, then ``splits`` and ``exclude_drives``. A record without splits (older
    checkpoints) gets no warning: nothing is known."""
    if not train:
        return None
    entries = train.get("datasets")
    if entries is None:
        if dataset and train.get("dataset") not in (None, dataset):
            return None  # e.g. a CamVid model scored on Cityscapes' val: another dataset, whatever the split
        entries = [{"type": train.get("dataset"), "splits": train.get("splits"),
                    "exclude_drives": train.get("exclude_drives"), "name": None, "source": None}]
    for entry in entries:
        if dataset and entry.get("type") not in (None, dataset):
            continue
        if root is not None and not _same_source(entry, root):
            continue
        warning = _split_warning(entry, split, drives)
        if warning:
            return warning
    return None


def _same_source(entry: dict, root) -> bool:
    from pathlib import Path
    note = Path(root) / "SOURCE.md"
    if entry.get("source") and note.is_file():
        return any(line.strip() == entry["source"] for line in note.read_text().splitlines())
    return entry.get("name") in (None, Path(root).resolve().name)


def _split_warning(entry: dict, split: str, drives) -> str | None:
    splits = entry.get("splits")
    if not splits or split not in splits:
        return None
    excluded = list(entry.get("exclude_drives") or [])
    held_out = lambda d: any(d.startswith(x) for x in excluded)  # noqa: E731 - drive names are prefixes
    if drives and all(held_out(d) for d in drives):
        return None
    where = f"split {split!r}" + (f" drives {' '.join(drives)}" if drives else "")
    hint = (f"score the held-out drive(s) with --drives {' '.join(excluded)}" if excluded
            else "score a split it did not train on")
    source = f"{entry['type']} " if entry.get("type") else ""
    return (f"warning: this checkpoint trained on {source}{where} (its train record: splits {list(splits)}, "
            f"excluded drives {excluded or 'none'}); this is not a hold-out score - {hint}")

