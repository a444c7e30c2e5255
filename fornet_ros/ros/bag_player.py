"""``fornet bag play``: publish a rosbag2's messages with rclpy at recorded timing.

For machines without ``ros2 bag`` (PyPI has no rosbag2). Messages are published as the CDR bytes
stored in the bag (rclpy publishes serialized messages as is), so nothing is re-encoded.
"""

from __future__ import annotations

import importlib
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ..bags import BagError, open_reader


def _msg_class(msgtype: str):
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError) as e:
        raise BagError(f"message type {msgtype} is not installed ({e})") from e


def play(path, rate: float = 1.0, loop: bool = False, clock: bool = False, topics=None, node=None,
         start_delay: float = 0.5, progress=None, wait_for_subscribers: float = 5.0) -> int:
    """Publishes every message (or those on ``topics``); returns how many were published.

    Before the first message it waits up to ``wait_for_subscribers`` seconds until every image
    topic has a matched subscriber (DDS discovery takes a moment; messages sent before a match
    are lost even with reliable QoS), then ``start_delay`` more."""
    if rate <= 0:
        raise BagError(f"rate must be positive, got {rate}")
    own = node is None
    if own:
        rclpy.init()
        node = rclpy.create_node("fornet_bag_player")
    reader = open_reader(path)
    sent = 0
    try:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:
            raise BagError(f"{path}: none of {topics} in the bag")
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {c.id: node.create_publisher(_msg_class(c.msgtype), c.topic, qos) for c in conns}
        clock_pub = None
        if clock:
            from rosgraph_msgs.msg import Clock
            clock_pub = node.create_publisher(Clock, "/clock", 10)
        image_pubs = [pubs[c.id] for c in conns if "image_raw" in c.topic] or list(pubs.values())
        deadline = time.monotonic() + wait_for_subscribers
        while time.monotonic() < deadline and any(p.get_subscription_count() == 0 for p in image_pubs):
            time.sleep(0.05)
        time.sleep(start_delay)
        while True:
            t0_bag, t0 = None, time.monotonic()
            for conn, t, raw in reader.messages(connections=conns):
                if t0_bag is None:
                    t0_bag = t
                wait = (t - t0_bag) / 1e9 / rate - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
                if clock_pub is not None:
                    from builtin_interfaces.msg import Time
                    from rosgraph_msgs.msg import Clock
                    clock_pub.publish(Clock(clock=Time(sec=t // 10**9, nanosec=t % 10**9)))
                pubs[conn.id].publish(bytes(raw))
                sent += 1
                if progress:
                    progress(sent)
            if not loop or not rclpy.ok():
                break
    finally:
        reader.close()
        if own:
            node.destroy_node()
            rclpy.try_shutdown()
    return sent
