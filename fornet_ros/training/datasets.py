"""Segmentation datasets returning (RGB uint8 HxWx3, train-ID uint8 HxW) pairs."""

from __future__ import annotations

import bisect
from pathlib import Path

import cv2
import numpy as np
import yaml
from torch.utils.data import ConcatDataset

from ..classes import (
    CAMVID,
    CITYSCAPES,
    CITYSCAPES_CLASSES,
    CITYSCAPES_PALETTE,
    IGNORE_INDEX,
    LABEL_SPACES,
    LabelSpace,
    lookup_table,
)
from ..errors import FornetError


class DatasetError(FornetError):
    """A dataset folder is missing, incomplete or holds unexpected label values."""


def read_rgb(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path) -> np.ndarray:
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise DatasetError(f"cannot read label {path}")
    if lab.ndim != 2 or lab.dtype != np.uint8:
        raise DatasetError(f"label {path} must be a single-channel 8-bit PNG, got {lab.shape} {lab.dtype}")
    return lab


class SegmentationDataset:
    """A list of (image path, label path) and a LUT mapping stored label values to train IDs.

    With a :class:`~fornet_ros.classes.LabelSpace` (``space``) the LUT follows from it: by default
    its labels for scoring (each coarse label as its representative class); with ``partial=True``
    the training codes of the partial-label loss (a coarse label as a set of classes).
    ``prediction_lut`` maps a model's predictions into this dataset's classes before scoring
    (None when the dataset labels every class exactly)."""

    classes = CITYSCAPES_CLASSES
    palette = CITYSCAPES_PALETTE

    def __init__(self, pairs: list[tuple[Path, Path]], lut: np.ndarray | None = None, transform=None,
                 cache: bool = False, valid_values: set[int] | None = None, space: LabelSpace | None = None,
                 partial: bool = False):
        if not pairs:
            raise DatasetError(f"{type(self).__name__}: no image/label pairs found")
        if lut is None:
            lut = space.train_lut() if partial else space.eval_lut()
        self.pairs, self.lut, self.transform, self.space, self.partial = pairs, lut, transform, space, partial
        self.valid_values = valid_values
        self._cache = {} if cache else None

    @property
    def prediction_lut(self) -> np.ndarray | None:
        """Asked only when scoring (a dataset whose sets overlap trains, but cannot be scored)."""
        return self.space.prediction_lut() if self.space is not None and not self.partial else None

    def __len__(self):
        return len(self.pairs)

    def load(self, i: int):
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        img_path, lab_path = self.pairs[i]
        img, raw = read_rgb(img_path), read_label(lab_path)
        if img.shape[:2] != raw.shape:
            raise DatasetError(f"size mismatch: {img_path} {img.shape[:2]} vs {lab_path} {raw.shape}")
        if self.valid_values is not None:
            bad = set(np.unique(raw).tolist()) - self.valid_values
            if bad:
                raise DatasetError(f"label {lab_path} holds unexpected values {sorted(bad)}")
        item = (img, self.lut[raw])
        if self._cache is not None:
            self._cache[i] = item
        return item

    def class_presence(self, num_classes: int, min_fraction: float = 0.005) -> np.ndarray:
        """(N, num_classes) bool: which classes each image labels *exactly* (a coarse label's set
        says nothing about which of its classes is there) on at least ``min_fraction`` of its
        pixels: a few stray pixels are not an object (in the JPEG-compressed low-resolution
        Cityscapes labels, dark noise snaps to truck's colour in 96 % of the frames; 8 % have 0.5 %
        of their pixels truck). Reads the labels only."""
        out = np.zeros((len(self), num_classes), bool)
        for i, (_, lab_path) in enumerate(self.pairs):
            lab = self.lut[read_label(lab_path)]
            out[i] = np.bincount(lab.ravel(), minlength=256)[:num_classes] >= max(1.0, min_fraction * lab.size)
        return out

    def sample_weights(self, balance: float = 0.0) -> np.ndarray:
        """Per-sample probability (sums to 1): even, or with ``balance > 0`` by :func:`repeat_factors`
        (images with rare classes more often)."""
        r = repeat_factors(self.class_presence(len(self.classes)), balance) if balance > 0 else np.ones(len(self))
        return r / r.sum()

    def __getitem__(self, i: int):
        img, label = self.load(i)
        if self.transform is not None:
            img, label = self.transform(img, label)
        return img, label


def _pair_by_name(img_dir: Path, lab_dir: Path, img_suffix: str = ".png", lab_suffix: str = ".png",
                  img_strip: str = "", lab_add: str = "") -> list[tuple[Path, Path]]:
    for d in (img_dir, lab_dir):
        if not d.is_dir():
            raise DatasetError(f"folder not found: {d}")
    imgs = sorted(p for p in img_dir.rglob(f"*{img_suffix}"))
    pairs, missing = [], []
    for p in imgs:
        stem = p.name[: -len(img_suffix)]
        if img_strip and stem.endswith(img_strip):
            stem = stem[: -len(img_strip)]
        lab = lab_dir / p.parent.relative_to(img_dir) / f"{stem}{lab_add}{lab_suffix}"
        (pairs if lab.is_file() else missing).append((p, lab))
    if missing:
        raise DatasetError(f"{len(missing)} image(s) without a label, e.g. {missing[0][0]} (expected {missing[0][1]})")
    return pairs


class CamVid(SegmentationDataset):
    """SegNet 11-class CamVid (``<root>/<split>/`` + ``<root>/<split>annot/``), mapped to Cityscapes
    train IDs by :data:`fornet_ros.classes.CAMVID_TO_TRAINID`. ``drives`` keeps / ``exclude_drives`` drops whole
    sequences (file-name prefixes such as ``0006R0``) for an honest hold-out."""

    def __init__(self, root, split: str = "train", transform=None, drives=None, exclude_drives=None, cache=False,
                 partial: bool = False):
        root = Path(root)
        pairs = _pair_by_name(root / split, root / f"{split}annot")
        if drives:
            pairs = [p for p in pairs if p[0].name.split("_")[0] in set(drives)]
        if exclude_drives:
            pairs = [p for p in pairs if p[0].name.split("_")[0] not in set(exclude_drives)]
        super().__init__(pairs, None, transform, cache, valid_values=set(range(12)), space=CAMVID, partial=partial)


class Cityscapes(SegmentationDataset):
    """Official layout: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and
    ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` (labelIds mapped to train IDs)."""

    def __init__(self, root, split: str = "train", transform=None, cities=None, cache=False, partial: bool = False):
        root = Path(root)
        pairs = _pair_by_name(root / "leftImg8bit" / split, root / "gtFine" / split,
                              img_strip="_leftImg8bit", lab_add="_gtFine_labelIds")
        if cities:
            pairs = [p for p in pairs if p[0].parent.name in set(cities)]
        super().__init__(pairs, None, transform, cache, space=CITYSCAPES, partial=partial)


class FolderDataset(SegmentationDataset):
    """``<root>/images/<split>/*`` + ``<root>/labels/<split>/*.png`` + ``<root>/classes.yaml``.

    classes.yaml: ``mapping: {stored value: class ID}`` (values not listed are ignored). Class IDs
    are Cityscapes train IDs unless the file names its own classes: ``classes: [name, ...]`` (and
    optionally ``palette: [[r, g, b], ...]``); then ID i is ``classes[i]`` and, without a
    ``mapping``, stored value i is class i (the labels of a model with its own classes). Or
    ``label_space: NAME``, one of :data:`fornet_ros.classes.LABEL_SPACES` (a dataset whose labels
    map onto the 19 classes through sets, e.g. ``idd_lite``; what ``scripts/prepare_datasets.py`` writes).
    """

    def __init__(self, root, split: str = "train", transform=None, cache=False, partial: bool = False):
        root = Path(root)
        cfg_path = root / "classes.yaml"
        if not cfg_path.is_file():
            raise DatasetError(f"folder dataset needs {cfg_path} with a 'mapping' of label value -> train ID "
                               "(or its own 'classes', or a 'label_space')")
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
        if "label_space" in cfg:
            if cfg["label_space"] not in LABEL_SPACES:
                raise DatasetError(f"{cfg_path}: unknown label_space {cfg['label_space']!r}; "
                                   f"choose one of {sorted(LABEL_SPACES)}")
            super().__init__(self._pairs(root, split), None, transform, cache, space=LABEL_SPACES[cfg["label_space"]],
                             partial=partial)
            return
        names, mapping = cfg.get("classes"), cfg.get("mapping")
        if names is not None:
            if not isinstance(names, list) or not names or len(set(names)) != len(names) or len(names) > 255:
                raise DatasetError(f"{cfg_path}: 'classes' must be a list of 1..255 distinct names")
            self.classes = tuple(str(n) for n in names)
            palette = cfg.get("palette") or [((i * 67) % 256, (i * 131) % 256, (i * 199) % 256)
                                             for i in range(len(names))]
            if len(palette) != len(names):
                raise DatasetError(f"{cfg_path}: {len(palette)} palette colours for {len(names)} classes")
            self.palette = tuple(tuple(int(v) for v in c) for c in palette)
            if mapping is None:
                mapping = {i: i for i in range(len(names))}
        if not isinstance(mapping, dict) or not mapping:
            raise DatasetError(f"{cfg_path}: 'mapping' must be a non-empty dict of label value -> class ID")
        n = len(self.classes)
        bad = {k: v for k, v in mapping.items()
               if not (0 <= int(k) <= 255 and (0 <= int(v) < n or int(v) == IGNORE_INDEX))}
        if bad:
            raise DatasetError(f"{cfg_path}: invalid entries {bad}")
        super().__init__(self._pairs(root, split), lookup_table({int(k): int(v) for k, v in mapping.items()}),
                         transform, cache)

    @staticmethod
    def _pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
        img_dir, lab_dir = root / "images" / split, root / "labels" / split
        for ext in (".png", ".jpg", ".jpeg"):
            if img_dir.is_dir() and any(img_dir.glob(f"*{ext}")):
                return _pair_by_name(img_dir, lab_dir, img_suffix=ext)
        raise DatasetError(f"no images in {img_dir}")


DATASETS = {"camvid": CamVid, "cityscapes": Cityscapes, "folder": FolderDataset}


def build_dataset(name: str, root, split: str, transform=None, **kw) -> SegmentationDataset:
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name](root, split, transform=transform, **kw)


class MixedDataset(ConcatDataset):
    """Several datasets as one (torch's ``ConcatDataset``: index ``i`` runs over the datasets one
    after another), each with its own transform, drawn with per-dataset probabilities
    (:meth:`sample_weights`): a training run on Cityscapes, CamVid and IDD-Lite at once."""

    def __init__(self, datasets: list[SegmentationDataset], weights: list[float]):
        if len(datasets) != len(weights) or not datasets:
            raise DatasetError("one weight per dataset")
        super().__init__(datasets)
        self.weights = [float(w) for w in weights]
        self.classes, self.palette = datasets[0].classes, datasets[0].palette

    def locate(self, i: int) -> tuple[SegmentationDataset, int]:
        k = bisect.bisect_right(self.cumulative_sizes, i)
        return self.datasets[k], i - (self.cumulative_sizes[k - 1] if k else 0)

    def load(self, i: int):
        d, j = self.locate(i)
        return d.load(j)

    def sample_weights(self, balance: float = 0.0) -> np.ndarray:
        """Per-sample probability (sums to 1): dataset ``k``'s weight spread over its samples,
        evenly, or with ``balance > 0`` by :func:`repeat_factors` (images with rare classes more often)."""
        total = sum(self.weights)
        return np.concatenate([w / total * d.sample_weights(balance) for d, w in zip(self.datasets, self.weights)])


def repeat_factors(presence: np.ndarray, threshold: float) -> np.ndarray:
    """Repeat-factor sampling (Gupta et al., LVIS, 2019; detectron2's ``RepeatFactorTrainingSampler``,
    written out here because detectron2 is not a dependency and ours draws with replacement):
    class ``c`` seen in a fraction ``f_c`` of the images gets ``r_c = max(1, sqrt(threshold / f_c))``;
    an image is repeated by the largest ``r_c`` of its classes. Classes no image has are skipped."""
    freq = presence.mean(axis=0)
    r_class = np.where(freq > 0, np.maximum(1.0, np.sqrt(threshold / np.maximum(freq, 1e-12))), 1.0)
    return np.where(presence, r_class[None, :], 1.0).max(axis=1)
