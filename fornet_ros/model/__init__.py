"""FoR-Net model (pure torch, no ROS)."""

from .focus import num_selected
from .fornet import FoRNet, region_map_to_pixels
from .registry import VARIANTS, create_model, variant_config

__all__ = ["FoRNet", "VARIANTS", "create_model", "variant_config", "num_selected", "region_map_to_pixels"]
