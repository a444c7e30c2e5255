"""fornet_ros: FoR-Net semantic segmentation (focus on hard regions) for ROS 2.

The folders are the architecture (docs/architecture.md): ``model/`` (torch modules) ->
``inference/`` (Segmenter, runtimes, checkpoint, export) -> ``training/``; ``mapping/`` (camera,
ground projection, grid fusion; numpy) and ``node/`` (the ROS-free node core) beside them;
``tools/`` (CLI features) and, on top, ``ros/``, the only package that imports rclpy.
"""

import os

__version__ = "0.1.0"

# How long an idle OpenMP worker of torch (libgomp, in PyTorch's Linux wheels) busy-waits after a
# parallel region before sleeping: libgomp's default, 300,000 spins, is milliseconds on this CPU, so
# after the network the worker still holds a core while OpenCV resizes the next frame and the arg-max
# runs (end to end 80 ms on a 58 ms network at 720x1280 on the 2-core CPU; 60-63 ms with 10,000 spins,
# docs/benchmarks.md). Read once, when torch loads libgomp: set here, before any module imports torch;
# a user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins (libgomp derives its spins from the policy only
# when GOMP_SPINCOUNT is unset); no effect where torch was imported first or uses another OpenMP. Like
# any environment variable it is inherited by the processes this one starts.
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"
