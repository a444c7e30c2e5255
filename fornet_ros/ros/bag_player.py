"""``fornet bag play``: publish a rosbag2's messages with rclpy at recorded timing.

For machines without ``ros2 bag`` (PyPI has no rosbag2). Messages are published as the CDR bytes
stored in the bag (rclpy publishes serialized messages as is), so nothing is re-encoded.

With ``clock``, /clock carries the bag's time like ``ros2 bag play --clock``: it runs at ``rate``
times wall speed from the first message's time, is published every ``1 / clock_hz`` s of wall time
(and once more, exactly at a message's time, just before that message), and already holds the first
message's time while waiting for subscribers, so a ``use_sim_time`` node never sees a stamp far
ahead of its clock.

Two playback modes (:data:`PLAYBACK_MODES`): ``recorded`` publishes at the recorded timing (times
``rate``), as a camera would: a node slower than the bag keeps only its newest frame and drops the
rest, which is right for testing a live robot. ``paced`` publishes each image at the recorded
timing too, but never before the node has answered the previous one (its ``<cam>/semantic/labels``
with that image's stamp, or ``answer_timeout`` s), so a replayed bag is segmented whole at the rate
the node sustains: what scoring a bag needs. In paced mode /clock holds the last image's time while
the node works and runs on from there, so the node never sees its input age grow from our waiting.
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


PLAYBACK_MODES = ("paced", "recorded")
ANSWER_TIMEOUT_S = 30.0  # paced: publish the next image anyway when the node has not answered in this long


def is_image_topic(topic: str) -> bool:
    return "image_raw" in topic


def answer_topic(image_topic: str) -> str:
    """The node's labels topic for an image topic: ``/cam/image_raw[/compressed]`` -> ``/cam/semantic/labels``."""
    return image_topic.split("/image_raw", 1)[0] + "/semantic/labels"


class _Answers:
    """Paced playback: which image stamps the node has answered (labels received with that stamp or a
    later one). Spins ``node`` itself only when the player owns it (else the caller's spinner runs
    our callback)."""

    def __init__(self, node, image_topics, spin: bool, timeout: float):
        from sensor_msgs.msg import Image
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node, self.spin, self.timeout = node, spin, timeout
        self.latest: dict[str, int] = {}
        self.unanswered = 0
        self._subs = [node.create_subscription(Image, answer_topic(t), self._callback(t), qos) for t in image_topics]

    def _callback(self, topic):
        def on_labels(msg):
            s = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.latest[topic] = max(s, self.latest.get(topic, -1))
        return on_labels

    def wait(self, topic: str, stamp: int) -> bool:
        """Until the node answered the image of ``stamp`` on ``topic`` (True) or the timeout (False)."""
        end = time.monotonic() + self.timeout
        while self.latest.get(topic, -1) < stamp:
            if time.monotonic() > end or not rclpy.ok():
                self.unanswered += 1
                return False
            if self.spin:
                rclpy.spin_once(self.node, timeout_sec=0.01)
            else:
                time.sleep(0.005)
        return True

    def close(self):
        for s in self._subs:
            self.node.destroy_subscription(s)


def header_stamp(raw: bytes, cls) -> int:
    """The header stamp (ns) of a serialized Image / CompressedImage."""
    from rclpy.serialization import deserialize_message
    st = deserialize_message(bytes(raw), cls).header.stamp
    return st.sec * 10**9 + st.nanosec


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


def _wait_for_subscribers(image_pubs, sim, seconds: float, start_delay: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(p.get_subscription_count() == 0 for p in image_pubs):
        time.sleep(0.05)
        if sim is not None:
            sim.publish(sim.last)
    if sim is not None:
        sim.sleep(start_delay)
    else:
        time.sleep(start_delay)


def play(path, rate: float = 1.0, loop: bool = False, clock: bool = False, topics=None, node=None,
         start_delay: float = 0.5, progress=None, wait_for_subscribers: float = 5.0,
         max_images: int | None = None, clock_hz: float = 50.0, mode: str = "recorded",
         answer_timeout: float = ANSWER_TIMEOUT_S) -> int:
    """Publishes every message (or those on ``topics``); returns how many were published.

    Before the first message it waits up to ``wait_for_subscribers`` seconds until every image
    topic has a matched subscriber (DDS discovery takes a moment; messages sent before a match
    are lost even with reliable QoS), then ``start_delay`` more. ``max_images``: stop before the
    image message after the first N (messages between the N-th image and the next, such as its
    camera_info, are still sent). ``progress(sent, topic, t_ns)`` is called after each message.
    ``mode``: ``recorded`` or ``paced`` (module docstring); a paced player that owns its node
    spins it, else the caller must spin ``node``."""
    if rate <= 0:
        raise BagError(f"rate must be positive, got {rate}")
    if clock and clock_hz <= 0:
        raise BagError(f"clock_hz must be positive, got {clock_hz}")
    if mode not in PLAYBACK_MODES:
        raise BagError(f"playback mode must be one of {PLAYBACK_MODES}, got {mode!r}")
    if answer_timeout <= 0:
        raise BagError(f"answer_timeout must be positive, got {answer_timeout}")
    own = node is None
    if own:
        rclpy.init()
        node = rclpy.create_node("fornet_bag_player")
    reader = open_reader(path)
    answers = None
    try:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        if not conns:
            raise BagError(f"{path}: none of {topics} in the bag")
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        classes = {c.id: _msg_class(c.msgtype) for c in conns}
        pubs = {c.id: node.create_publisher(classes[c.id], c.topic, qos) for c in conns}
        images = {c.id: c.topic for c in conns if is_image_topic(c.topic)}
        sim = _SimClock(node, rate, clock_hz) if clock else None
        if sim is not None:
            first = next(iter(reader.messages(connections=conns)), None)
            if first is not None:
                sim.publish(first[1])  # the node's clock holds the bag's start before any image arrives
        if mode == "paced":
            answers = _Answers(node, sorted(set(images.values())), own, answer_timeout)
        _wait_for_subscribers([pubs[i] for i in images] or list(pubs.values()), sim, wait_for_subscribers, start_delay)
        sent = 0
        while True:
            sent = _play_once(reader, conns, pubs, images, classes, rate, sim, answers, max_images, progress, sent)
            if not loop or not rclpy.ok():
                break
        if answers is not None and answers.unanswered:
            node.get_logger().warning(f"paced playback: {answers.unanswered} image(s) not answered within "
                                      f"{answer_timeout:g} s; the next was published anyway")
    finally:
        if answers is not None:
            answers.close()
        reader.close()
        if own:
            node.destroy_node()
            rclpy.try_shutdown()
    return sent


def _play_once(reader, conns, pubs, images, classes, rate, sim, answers, max_images, progress, sent: int) -> int:
    """One pass over the bag at the recorded timing x ``rate``; returns ``sent`` plus the messages it
    published. With ``answers`` (paced), an image waits for the node's answer to the previous one
    first; the bag's timeline (and /clock) pauses for as long as that answer is late, and waits for
    the last image's answer before returning."""
    t0_bag, t0, n_images, pending = None, time.monotonic(), 0, None
    for conn, t, raw in reader.messages(connections=conns):
        if conn.id in images:
            if max_images is not None and n_images >= max_images:
                break
            n_images += 1
            if pending is not None:
                answers.wait(*pending)
                late = (time.monotonic() - t0) - (t - t0_bag) / 1e9 / rate
                if late > 0:  # the timeline resumes at this image, now
                    t0 += late
                    if sim is not None:
                        sim.anchor(t0_bag, t0)
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
        if answers is not None and conn.id in images:
            pending = (images[conn.id], header_stamp(raw, classes[conn.id]))
    if pending is not None:
        answers.wait(*pending)
    return sent
