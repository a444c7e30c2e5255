"""Running segmentation_node in its own process beside an rclpy node of ours (demo, benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "config"


def isolated_env(domain: int) -> dict:
    """Environment for a DDS graph on loopback only, on its own domain; also applied to this
    process so that rclpy.init() here joins the same graph."""
    env = {"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    profile = CONFIG / "fastdds_large_images.xml"
    if profile.is_file():
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    os.environ.update(env)
    return {**os.environ, **env}


def start_node(params: list[str], env: dict, stdout=subprocess.DEVNULL) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fornet_ros.ros.node", "--ros-args"] + sum((["-p", p] for p in params), [])
    return subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT)


def stop_node(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT, then kill if it does not exit within ``timeout``."""
    proc.send_signal(2)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Spinner:
    """Spins an rclpy node in a background thread until closed."""

    def __init__(self, node):
        import rclpy
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: [rclpy.spin_once(node, timeout_sec=0.02) for _ in iter(self._stop.is_set, True)], daemon=True)
        self._thread.start()

    def close(self):
        self._stop.set()
        self._thread.join(2)
