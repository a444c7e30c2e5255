"""The ROS 2 adapter: message conversions and the segmentation node (the only rclpy importers)."""
