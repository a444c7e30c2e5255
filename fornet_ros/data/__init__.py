"""Package data: the demo clip (``clips/``). The datasets and transforms that lived here moved to
:mod:`fornet_ros.training.datasets` and :mod:`fornet_ros.training.transforms`; their names stay
importable from here for one release."""

from ..training.datasets import DATASETS, CamVid, Cityscapes, FolderDataset, SegmentationDataset, build_dataset
from ..training.transforms import TrainTransform

__all__ = ["DATASETS", "CamVid", "Cityscapes", "FolderDataset", "SegmentationDataset", "build_dataset",
           "TrainTransform"]
