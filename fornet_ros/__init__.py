"""fornet_ros: FoR-Net semantic segmentation (focus on hard regions) for ROS 2.

The folders are the architecture (docs/architecture.md): ``model/`` (torch modules) ->
``inference/`` (Segmenter, runtimes, checkpoint, export) -> ``training/``; ``mapping/`` (camera,
ground projection, grid fusion; numpy) and ``node/`` (the ROS-free node core) beside them;
``tools/`` (CLI features) and, on top, ``ros/``, the only package that imports rclpy.
"""

__version__ = "0.1.0"
