"""``fornet bench-node``: segmentation_node end to end over DDS vs the model alone, and overload.

Publishes the same synthetic frames to a node in its own process at ``--rate`` Hz and measures,
per output, publish -> labels received (both stamps on the same machine's clock). The model
alone (Segmenter on the same frames, in this process, with the node stopped) is the baseline.
The transport floor (:mod:`fornet_ros.ros.transport_floor`: the same frames and outputs through
DDS with no model) splits the node's time over the model alone into what DDS and rclpy cost and
what the node itself adds.
"""

from __future__ import annotations

import statistics
import threading
import time

from .processes import (DRAIN_S, FLOOR_MODULE, NODE_MODULE, SETTLE_S, START_TIMEOUT_S, bench_graph, check_alive, pct,
                        subscribe_diagnostics, wait_subscribed)

OPTIONAL_OUTPUTS = ("color", "importance", "confidence", "overlay")


def _node_run(checkpoint, frames, rate, seconds, threads, domain, input_size, outputs: str,
              backend: str = "fastest", module: str = NODE_MODULE) -> dict:
    """One node process (``module``: the node, or the transport floor); frames published at ``rate``
    for ``seconds``. ``outputs``: 'labels' (only labels subscribed) or 'all' (every image output
    subscribed: a frame's latency is publish -> the last of its outputs received)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ..node.frames import stamp_ns
    from .conversions import fill_image

    topics = ["labels"] + (list(OPTIONAL_OUTPUTS) if outputs == "all" else [])
    arrivals, lock = {}, threading.Lock()  # stamp -> {output: latency ms}
    diags = {}  # the node's own view per camera: its inference p50 (the Segmenter call inside it), backend, focus path

    def setup(node):
        def on_output(msg, out):
            now = node.get_clock().now().nanoseconds
            s = stamp_ns(msg.header.stamp)
            with lock:
                arrivals.setdefault(s, {})[out] = (now - s) / 1e6
        subscribe_diagnostics(node, diags, lock)
        for out in topics:
            node.create_subscription(Image, f"cam/semantic/{out}", lambda m, o=out: on_output(m, o),
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        return node.create_publisher(Image, "cam/image_raw", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))

    def complete():
        with lock:
            return [max(v.values()) for v in arrivals.values() if len(v) == len(topics)]
    with bench_graph("fornet_bench_node", ["cameras:=[cam]", "costmap_enabled:=false", f"backend:={backend}"],
                     checkpoint, threads, input_size, domain, setup, module) as g:
        node, pub = g.node, g.io
        t_end = time.monotonic() + START_TIMEOUT_S
        wait_subscribed(g, "/cam/image_raw", t_end)
        while not complete() and time.monotonic() < t_end:  # warm-up until every output flows
            check_alive(g.proc)
            pub.publish(fill_image(Image(), frames[0], Header(stamp=node.get_clock().now().to_msg()), "rgb8"))
            time.sleep(0.3)
        time.sleep(SETTLE_S)
        with lock:
            arrivals.clear()
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            hdr = Header(stamp=node.get_clock().now().to_msg(), frame_id="cam")
            pub.publish(fill_image(Image(), frames[sent % len(frames)], hdr, "rgb8"))
            sent += 1
            time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        time.sleep(DRAIN_S)
        e2e = complete()
        with lock:
            diag = diags.get("cam", {})
            node_view = {k: diag.get(k) for k in ("inference_ms_p50", "inference_ms_p95", "backend", "runtime",
                                                  "focus_path", "topk_ratio")}
    return {"outputs": outputs, "sent": sent, "processed": len(e2e), "processed_hz": len(e2e) / seconds,
            "dropped": sent - len(e2e), "node_e2e_ms_p50": statistics.median(e2e) if e2e else None,
            "node_e2e_ms_p95": pct(e2e, 0.95), "node_e2e_ms_max": max(e2e) if e2e else None, "node_diagnostics": node_view}


def bench_node(checkpoint, size, rate: float, seconds: float, threads: int | None, domain: int = 77,
               input_size=None, outputs=("labels", "all"), backend: str = "fastest") -> dict:
    """The node end to end (one run per ``outputs`` mode), the transport floor (one run per mode of
    :mod:`fornet_ros.ros.transport_floor`) and the model alone on the same frames, in one command:
    ``overhead_ratio_p50`` = node e2e p50 / model alone p50 per mode, ``node_own_ms_p50`` = node e2e
    p50 - model alone p50 - floor p50. ``backend``:
    the node's parameter (default: the node's default), the baseline alone runs the same."""
    from ..inference import Segmenter
    from ..tools.synthetic import make_scene

    H, W = size
    frames = [make_scene(H, W, seed=i)[0] for i in range(4)]
    runs = [_node_run(checkpoint, frames, rate, seconds, threads, domain, input_size, o, backend) for o in outputs]
    floors = [_node_run(None, frames, rate, seconds, threads, domain, None, o, module=FLOOR_MODULE) for o in outputs]
    # the model alone on the same frames, same thread count, after the nodes are gone
    import torch
    if threads:
        torch.set_num_threads(threads)
    from ..node.params import backend_options
    # as the node picks: the same backend and choice rule inside and alone
    seg = Segmenter.from_checkpoint(checkpoint, backend=backend, device="auto", input_size=input_size,
                                    **backend_options(backend))
    seg.warmup()  # as the node does at configure: auto takes the measured cheaper focus path
    for f in frames[:2]:
        seg(f)
    alone = []
    for i in range(max(10, min(40, max(r["processed"] for r in runs)))):
        t = time.perf_counter()
        seg(frames[i % len(frames)], outputs=())  # labels only: what every node run needs at least
        alone.append((time.perf_counter() - t) * 1000)
    alone_p50 = statistics.median(alone)
    for r, floor in zip(runs, floors):
        r["overhead_ratio_p50"] = r["node_e2e_ms_p50"] / alone_p50 if r["node_e2e_ms_p50"] else None
        # the same frames and outputs through DDS with no model: what transport alone costs a frame
        r["transport_floor_ms_p50"], r["transport_floor_ms_p95"] = floor["node_e2e_ms_p50"], floor["node_e2e_ms_p95"]
        r["transport_floor_dropped"] = floor["dropped"]
        # the node's time beyond the model alone and that floor: what the node itself adds
        r["node_own_ms_p50"] = (r["node_e2e_ms_p50"] - alone_p50 - floor["node_e2e_ms_p50"]
                                if r["node_e2e_ms_p50"] and floor["node_e2e_ms_p50"] else None)
        infer = (r["node_diagnostics"] or {}).get("inference_ms_p50")
        # the Segmenter call inside the node vs the same call alone: > 1 is contention inside the node process
        r["node_inference_ratio_p50"] = float(infer) / alone_p50 if infer not in (None, "nan") else None
    return {"size": [H, W], "rate_hz": rate, "seconds": seconds, "backend_requested": backend,
            "backend": seg.backend, "provider": seg.provider,
            "runtime": seg.runtime, "choice": getattr(seg, "choice", None),
            "threads": torch.get_num_threads(), "model_alone_ms_p50": alone_p50, "runs": runs,
            "targets": {"overhead_ratio_p50_labels_le": 1.10, "overhead_ratio_p50_all_le": 1.25}}
