"""From labels to the map (numpy + opencv; no torch, no ROS): the camera model and its pose
(:mod:`.camera`), the flat-ground projection of label pixels into grid cells (:mod:`.projection`),
the grid layers and their fusion over cameras and time (:mod:`.fusion`), depth / LiDAR points
(:mod:`.points`) and the costmap score against ground truth (:mod:`.costmap_score`)."""

from .camera import (D_LENGTHS, R_BODY_OPTICAL, CameraModel, GeometryError, Pose, optical_in_grid,
                     transform_from_quaternion)
from .fusion import (DEFAULT_LAYER_CONFIG, UNKNOWN, FusionWindow, GridFuser, GridMemory, Layer, LayerConfig,
                     contact_mask, load_layer_config, read_layer_config)
from .projection import (PROJECTION_MAX_PIXELS, GridSpec, Lookup, LookupCache, build_lookup, downsample_labels,
                         projection_shape)

__all__ = ["D_LENGTHS", "R_BODY_OPTICAL", "CameraModel", "GeometryError", "Pose", "optical_in_grid",
           "transform_from_quaternion", "DEFAULT_LAYER_CONFIG", "UNKNOWN", "FusionWindow", "GridFuser", "GridMemory",
           "Layer", "LayerConfig", "contact_mask", "load_layer_config", "read_layer_config", "PROJECTION_MAX_PIXELS",
           "GridSpec", "Lookup", "LookupCache", "build_lookup", "downsample_labels", "projection_shape"]
