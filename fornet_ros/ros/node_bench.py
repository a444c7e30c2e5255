"""``fornet bench-node``: segmentation_node end to end over DDS vs the model alone, and overload.

Publishes the same synthetic frames to a node in its own process at ``--rate`` Hz and measures,
per output, publish -> labels received (both stamps on the same machine's clock). The model
alone (Segmenter on the same frames, in this process, with the node stopped) is the baseline.
"""

from __future__ import annotations

import statistics
import threading
import time


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def bench_node(checkpoint, size, rate: float, seconds: float, threads: int | None, domain: int = 77,
               input_size=None) -> dict:
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ..inference import Segmenter
    from ..synthetic import make_scene
    from .conversions import fill_image, stamp_ns
    from .processes import Spinner, isolated_env, start_node, stop_node

    H, W = size
    frames = [make_scene(H, W, seed=i)[0] for i in range(4)]
    env = isolated_env(domain)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    params = ["cameras:=[cam]", "costmap_enabled:=false", "publish_color:=false"]
    if threads:
        params.append(f"threads:={threads}")
    if checkpoint:
        params.append(f"checkpoint:={checkpoint}")
    if input_size:
        params.append(f"input_size:=[{input_size[0]}, {input_size[1]}]")
    node_proc = start_node(params, env)
    rclpy.init(domain_id=domain)
    node = rclpy.create_node("fornet_bench_node")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
    pub = node.create_publisher(Image, "cam/image_raw", qos)
    lat, lock = [], threading.Lock()

    def on_labels(msg):
        now = node.get_clock().now().nanoseconds
        with lock:
            lat.append((now - stamp_ns(msg.header.stamp)) / 1e6)
    node.create_subscription(Image, "cam/semantic/labels", on_labels, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    spinner = Spinner(node)
    try:
        t_end = time.monotonic() + 120
        while node.count_subscribers("/cam/image_raw") == 0 and time.monotonic() < t_end:
            time.sleep(0.1)
        # warm-up until outputs flow
        while not lat and time.monotonic() < t_end:
            pub.publish(fill_image(Image(), frames[0], Header(stamp=node.get_clock().now().to_msg()), "rgb8"))
            time.sleep(0.3)
        time.sleep(1.0)
        with lock:
            lat.clear()
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            hdr = Header(stamp=node.get_clock().now().to_msg(), frame_id="cam")
            pub.publish(fill_image(Image(), frames[sent % len(frames)], hdr, "rgb8"))
            sent += 1
            nxt = t0 + sent / rate
            time.sleep(max(0.0, nxt - time.monotonic()))
        time.sleep(2.0)
        with lock:
            e2e = list(lat)
    finally:
        spinner.close()
        stop_node(node_proc)
        node.destroy_node()
        rclpy.try_shutdown()
    # the model alone on the same frames, same thread count, after the node is gone
    import torch
    if threads:
        torch.set_num_threads(threads)
    seg = Segmenter.from_checkpoint(checkpoint, device="cpu", input_size=input_size)
    for f in frames[:2]:
        seg(f)
    alone = []
    for i in range(max(10, min(40, len(e2e)))):
        t = time.perf_counter()
        seg(frames[i % len(frames)])
        alone.append((time.perf_counter() - t) * 1000)
    out = {"size": [H, W], "rate_hz": rate, "seconds": seconds, "sent": sent, "processed": len(e2e),
           "processed_hz": len(e2e) / seconds, "dropped": sent - len(e2e),
           "node_e2e_ms_p50": statistics.median(e2e) if e2e else None, "node_e2e_ms_p95": _pct(e2e, 0.95),
           "node_e2e_ms_max": max(e2e) if e2e else None, "model_alone_ms_p50": statistics.median(alone),
           "threads": torch.get_num_threads()}
    if e2e:
        out["overhead_ratio_p50"] = out["node_e2e_ms_p50"] / out["model_alone_ms_p50"]
    return out
