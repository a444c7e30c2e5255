# Source this (from the repo root) to use the venv's ROS 2 wheels and the colcon install:
#   source scripts/env.sh
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$_root/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
[ -f "$_root/install/setup.bash" ] && source "$_root/install/setup.bash"
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_root/config/fastdds_large_images.xml}"
unset _root
