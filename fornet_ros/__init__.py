"""fornet_ros: FoR-Net semantic segmentation (focus on hard regions) for ROS 2.

The core (config, classes, model, inference, geometry, metrics, data, train) imports
no ROS package; only :mod:`fornet_ros.ros` talks to rclpy.
"""

__version__ = "0.1.0"
