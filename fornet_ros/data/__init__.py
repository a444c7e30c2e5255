"""Datasets (Cityscapes, CamVid, generic folder) and joint image+label transforms. No ROS."""

from .datasets import DATASETS, CamVid, Cityscapes, FolderDataset, SegmentationDataset, build_dataset
from .transforms import TrainTransform

__all__ = ["DATASETS", "CamVid", "Cityscapes", "FolderDataset", "SegmentationDataset", "build_dataset",
           "TrainTransform"]
