"""From a checkpoint or an exported model to arrays (torch / ONNX Runtime; no ROS): the
:class:`Segmenter` (:mod:`.segmenter`), the runtimes it runs on (:mod:`.runtime`, :mod:`.device_ops`,
:mod:`.cuda_graphs`), the self-describing checkpoint and :class:`ModelMeta` (:mod:`.checkpoint`), the
description of another toolbox's model (:mod:`.model_description`) and the ONNX export (:mod:`.export`).

``fornet_ros.inference`` was one module before the package tree (0.1.0); its names stay importable from here.
"""

from .runtime import OrtRunner, TorchRunner, resolve_device, resolve_precision
from .segmenter import OUTPUTS, PROCESSING, RESIZE_MODES, Segmentation, Segmenter, validate_image

__all__ = ["OUTPUTS", "PROCESSING", "RESIZE_MODES", "OrtRunner", "Segmentation", "Segmenter", "TorchRunner",
           "resolve_device", "resolve_precision", "validate_image"]
