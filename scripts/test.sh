#!/usr/bin/env bash
# One command for the whole test suite: colcon build + colcon test (real rclpy, real DDS on
# loopback), then pytest's summary. Exits non-zero on any failure.
set -eo pipefail  # no -u: colcon's setup.bash reads unset variables
cd "$(dirname "$0")/.."
source scripts/env.sh
colcon build --symlink-install --packages-select fornet_ros --event-handlers console_cohesion- > /dev/null
source install/setup.bash
rc=0
colcon test --packages-select fornet_ros --return-code-on-test-failure \
  --event-handlers console_direct+ --pytest-args -q -p no:cacheprovider || rc=$?
colcon test-result --all --verbose | tail -n 5 || true
exit $rc
