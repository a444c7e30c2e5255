"""FoR-Net model and the DDRNet-23-slim baseline (pure torch, no ROS)."""

from .focus import AdaptiveK, num_selected
from .fornet import FoRNet
from .registry import VARIANTS, build_model, create_model, variant_config

__all__ = ["AdaptiveK", "FoRNet", "VARIANTS", "build_model", "create_model", "variant_config", "num_selected"]
