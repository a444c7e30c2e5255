"""The node's core without ROS (no rclpy, no torch at import): the frame mailbox and stamps
(:mod:`.frames`), image decoding (:mod:`.images`), the per-frame pipeline (:mod:`.pipeline`), the
latency K controller (:mod:`.k_controller`), diagnostics rules (:mod:`.diagnostics`), the node's
parameter table (:mod:`.params`) and the launch file's argument logic (:mod:`.launch_logic`).
:mod:`fornet_ros.ros.node` wires these to rclpy."""
