"""The ``fornet`` command's features that need no ROS: benchmarks, rosbag2 files
(``rosbags``), bag evaluation, the demo clip, synthetic scenes and the demo report's pictures and pages.
The command layer over them is :mod:`fornet_ros.commands`; what talks to a running graph (the demo, bag
play, the node benchmarks) lives in :mod:`fornet_ros.ros`."""
