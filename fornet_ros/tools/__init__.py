"""The ``fornet`` command's features that need no ROS: predict, model info / init, benchmarks, rosbag2
files (``rosbags``), the demo clip, synthetic scenes and the demo report's pictures and pages.
Tools that talk to a running graph (demo, bag play, bench-node) live in :mod:`fornet_ros.ros`."""
