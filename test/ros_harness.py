"""Helpers for the real-DDS tests: isolated domain, node subprocess, a test-side rclpy node."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"


def ros_env(domain: int) -> dict:
    """Environment for an isolated graph on loopback; also applied to this process."""
    env = {"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "FASTDDS_DEFAULT_PROFILES_FILE": str(CONFIG / "fastdds_large_images.xml"),
           "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", "PYTHONUNBUFFERED": "1"}
    os.environ.update(env)
    return {**os.environ, **env}


def start_node(env: dict, *params: str, log_path: Path | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fornet_ros.ros.segmentation_node", "--ros-args", "--params-file", str(CONFIG / "fornet.yaml")]
    for p in params:
        cmd += ["-p", p]
    out = open(log_path, "w") if log_path else subprocess.PIPE
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


class Collector:
    """A test-side node: publishes camera frames, records everything the node publishes."""

    def __init__(self, cameras=("cam0", "cam1"), domain: int = 0, outputs=("labels", "color", "importance", "confidence")):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import String

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("fornet_test_collector", context=self.context)
        self.lock = threading.Lock()
        self.msgs: dict[str, list] = {}
        self.pubs, self.info_pubs = {}, {}
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for cam in cameras:
            self.pubs[cam] = self.node.create_publisher(Image, f"{cam}/image_raw", reliable)
            self.info_pubs[cam] = self.node.create_publisher(CameraInfo, f"{cam}/camera_info", reliable)
            for out in outputs:  # the node computes an optional map only when it is subscribed
                self._sub(Image, f"{cam}/semantic/{out}", reliable)
            self._sub(CameraInfo, f"{cam}/semantic/camera_info", reliable)
        self._sub(DiagnosticArray, "/diagnostics", reliable)
        from nav_msgs.msg import OccupancyGrid
        from sensor_msgs.msg import PointCloud2
        for layer in ("combined", "road", "vehicles"):
            self._sub(OccupancyGrid, f"semantic_costmap/{layer}", reliable)
        self._sub(PointCloud2, "semantic_points", reliable)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._sub(String, "semantic/label_info", latched)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - shutdown race
                return

    def _sub(self, typ, topic, qos):
        def cb(msg, topic=topic):
            with self.lock:
                self.msgs.setdefault(topic, []).append(msg)
        self.node.create_subscription(typ, topic, cb, qos)

    def get(self, topic) -> list:
        with self.lock:
            return list(self.msgs.get(topic, []))

    def wait_for(self, pred, timeout: float = 30.0, publish=None, period: float = 0.2) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if publish:
                publish()
            if pred():
                return True
            time.sleep(period)
        return pred()

    def call(self, send, timeout: float = 60.0, attempt_s: float = 10.0):
        """The response of an idempotent service call: ``send()`` returns a new request's future; it is
        sent again each ``attempt_s`` without an answer, until ``timeout``.

        Why ask again: rmw_fastrtps drops a response when the server has not yet matched the client's
        reply reader within 100 ms (ros2/rmw_fastrtps#390, #467). A just-created client on a loaded
        machine can hit that although wait_for_service returned: the request arrives, its answer never
        does. Only for calls whose repetition changes nothing (get_state, setting the same parameters)."""
        end = time.monotonic() + timeout
        while True:
            fut = send()
            if self.wait_for(fut.done, timeout=min(attempt_s, max(end - time.monotonic(), 0.1)), period=0.02):
                return fut.result()
            fut.cancel()
            assert time.monotonic() < end, f"no answer to the service call in {timeout:.0f} s"

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def start_node_with(env: dict, params=(), ros_args=(), log_path: Path | None = None) -> subprocess.Popen:
    """Like :func:`start_node`, with extra ``--ros-args`` (e.g. ``-r __node:=other``) before the parameters."""
    cmd = [sys.executable, "-m", "fornet_ros.ros.segmentation_node", "--ros-args", *ros_args,
           "--params-file", str(CONFIG / "fornet.yaml")]
    for p in params:
        cmd += ["-p", p]
    out = open(log_path, "w") if log_path else subprocess.PIPE
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


def add_publisher(col: Collector, typ, topic: str, depth: int = 10):
    """A reliable publisher on the Collector's node (e.g. CompressedImage topics)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return col.node.create_publisher(typ, topic, QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))


def add_subscription(col: Collector, typ, topic: str, depth: int = 10) -> None:
    """Record ``topic`` in ``col`` as well (read with ``col.get(topic)``)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    col._sub(typ, topic, QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))


class FakeNode:
    """What the ROS-side helpers (SemanticCostmap, LabelledPoints) need of a node, in process:
    publishers that record, subscriptions the test calls, a logger, a clock."""

    def __init__(self):
        self.published, self.warnings, self.callbacks = {}, [], {}

    def create_publisher(self, typ, topic, qos):
        return SimpleNamespace(publish=lambda m, t=topic: self.published.setdefault(t, []).append(m))

    def create_subscription(self, typ, topic, callback, qos):
        self.callbacks[topic] = callback  # the test delivers messages by calling it

    def get_logger(self):
        return SimpleNamespace(warning=lambda m, **kw: self.warnings.append(m), info=lambda m, **kw: None)

    def get_clock(self):
        from rclpy.clock import Clock
        return Clock()
