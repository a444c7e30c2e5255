"""``fornet bag play``: publish a rosbag2's messages with rclpy at recorded timing.

For machines without ``ros2 bag`` (PyPI has no rosbag2). Messages are published as the CDR bytes
stored in the bag (rclpy publishes serialized messages as is), so nothing is re-encoded.

With ``clock``, /clock carries the bag's time like ``ros2 bag play --clock``: it runs at ``rate``
times wall speed from the first message's time, is published every ``1 / clock_hz`` s of wall time
(and once more, exactly at a message's time, just before that message), and already holds the first
message's time while waiting for subscribers, so a ``use_sim_time`` node never sees a stamp far
ahead of its clock.
"""

from __future__ import annotations

import importlib
import time

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ..tools.bags import BagError, open_reader


def _msg_class(msgtype: str):
    pkg, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError) as e:
        raise BagError(f"message type {msgtype} is not installed ({e})") from e


def is_image_topic(topic: str) -> bool:
    return "image_raw" in topic


class _SimClock:
    """/clock publisher: bag time = t0 + (wall time since anchor) x rate, never going backwards."""

    def __init__(self, node, rate: float, hz: float):
        from rosgraph_msgs.msg import Clock
        self._pub = node.create_publisher(Clock, "/clock", 10)
        self._Clock = Clock
        self.rate, self.period = rate, 1.0 / hz
        self.t0 = self.wall0 = None
        self.last = -1

    def anchor(self, t0_ns: int, wall0: float):
        self.t0, self.wall0 = t0_ns, wall0

    def publish(self, t_ns: int):
        from builtin_interfaces.msg import Time
        t_ns = max(int(t_ns), self.last)
        self.last = t_ns
        self._pub.publish(self._Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))

    def tick(self):
        if self.t0 is not None:
            self.publish(self.t0 + (time.monotonic() - self.wall0) * self.rate * 1e9)

    def sleep(self, seconds: float):
        """Sleep, ticking the clock every period."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, self.period))
            self.tick()


def play(path, rate: float = 1.0, loop: bool = False, clock: bool = False, topics=None, node=None,
         start_delay: float = 0.5, progress=None, wait_for_subscribers: float = 5.0,
         max_images: int | None = None, clock_hz: float = 50.0) -> int:
    """Publishes every message (or those on ``topics``); returns how many were published.

    Before the first message it waits up to ``wait_for_subscribers`` seconds until every image
    topic has a matched subscriber (DDS discovery takes a moment; messages sent before a match
    are lost even with reliable QoS), then ``start_delay`` more. ``max_images``: stop before the
    image message after the first N (messages between the N-th image and the next, such as its
    camera_info, are still sent). ``progress(sent, topic, t_ns)`` is called after each message."""
    if rate <= 0:
        raise BagError(f"rate must be positive, got {rate}")
    if clock and clock_hz <= 0:
        raise BagError(f"clock_hz must be positive, got {clock_hz}")
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
        image_ids = {c.id for c in conns if is_image_topic(c.topic)}
        sim = _SimClock(node, rate, clock_hz) if clock else None
        if sim is not None:
            first = next(iter(reader.messages(connections=conns)), None)
            if first is not None:
                sim.publish(first[1])  # the node's clock holds the bag's start before any image arrives
        image_pubs = [pubs[i] for i in image_ids] or list(pubs.values())
        deadline = time.monotonic() + wait_for_subscribers
        while time.monotonic() < deadline and any(p.get_subscription_count() == 0 for p in image_pubs):
            time.sleep(0.05)
            if sim is not None:
                sim.publish(sim.last)
        if sim is not None:
            sim.sleep(start_delay)
        else:
            time.sleep(start_delay)
        while True:
            t0_bag, t0 = None, time.monotonic()
            images = 0
            for conn, t, raw in reader.messages(connections=conns):
                if conn.id in image_ids:
                    if max_images is not None and images >= max_images:
                        break
                    images += 1
                if t0_bag is None:
                    t0_bag = t
                    if sim is not None:
                        sim.last = -1  # a loop starts the clock over, as ros2 bag play does
                        sim.anchor(t, t0)
                wait = (t - t0_bag) / 1e9 / rate - (time.monotonic() - t0)
                if wait > 0:
                    (sim.sleep if sim is not None else time.sleep)(wait)
                if sim is not None:
                    sim.publish(t)
                pubs[conn.id].publish(bytes(raw))
                sent += 1
                if progress:
                    progress(sent, conn.topic, t)
            if not loop or not rclpy.ok():
                break
    finally:
        reader.close()
        if own:
            node.destroy_node()
            rclpy.try_shutdown()
    return sent
