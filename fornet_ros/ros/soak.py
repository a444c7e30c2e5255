"""``fornet bench-node --soak``: segmentation_node for minutes with synthetic cameras; its memory slope,
latency drift and exact frame accounting (sent = received + lost; received = processed + dropped)."""

from __future__ import annotations

import math
import statistics
import threading
import time

from ..node.params import NodeParams
from .processes import DRAIN_S, SETTLE_S, START_TIMEOUT_S, bench_graph, pct

DIAGNOSTICS_PERIOD_S = NodeParams.diagnostics_period_s  # the node's default: soak does not set it


def rss_mb(pid: int) -> float | None:
    """Resident set size of process ``pid`` in MB (VmRSS of /proc/<pid>/status; Linux), None if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        return None
    return None


def slope_per_min(points) -> float | None:
    """Least-squares slope of [(seconds, value)] in value per minute; None with fewer than 2 points."""
    if len(points) < 2:
        return None
    t = [p[0] / 60.0 for p in points]
    v = [p[1] for p in points]
    tm, vm = sum(t) / len(t), sum(v) / len(v)
    den = sum((x - tm) ** 2 for x in t)
    return sum((x - tm) * (y - vm) for x, y in zip(t, v)) / den if den else None


def soak_node(checkpoint, size, rate: float, minutes: float, threads: int | None, domain: int = 77,
              input_size=None, cameras: int = 1, sample_s: float = 10.0, costmap: bool = True,
              progress=None) -> dict:
    """Run segmentation_node for ``minutes`` with ``cameras`` cameras each publishing at ``rate`` Hz
    (synthetic frames of ``size`` stamped at publication, a CameraInfo per camera, costmap on).

    Every ``sample_s`` s: the node process's RSS. After the run (and a drain of 3 s): the RSS slope
    (least squares, MB/min) after the warm-up (2 minutes, or 20 % of a shorter run), frames
    sent / received / processed / dropped per camera from the node's own /diagnostics counters
    with the two identities checked (received = processed + dropped; sent = received +
    lost_in_transport), and the publish -> labels latency p50/p95 per minute (by publication time)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from ..node.frames import stamp_ns
    from ..tools.synthetic import make_scene
    from .conversions import fill_image

    H, W = size
    cams = [f"cam{i}" for i in range(cameras)]
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    info = CameraInfo(height=H, width=W, distortion_model="plumb_bob",
                      k=[W / 2.0, 0.0, W / 2.0, 0.0, W / 2.0, H / 2.0, 0.0, 0.0, 1.0])
    msgs = {c: [fill_image(Image(), make_scene(H, W, seed=4 * i + j)[0], Header(frame_id=c), "rgb8")
                for j in range(4)] for i, c in enumerate(cams)}
    lock = threading.Lock()
    lat: list[tuple[float, float]] = []  # (publication s since t0, latency ms)
    diag: dict[str, dict] = {}
    t0_ns = [None]

    def setup(node):
        def on_labels(msg):
            now = node.get_clock().now().nanoseconds
            s = stamp_ns(msg.header.stamp)
            with lock:
                if t0_ns[0] is not None and s >= t0_ns[0]:
                    lat.append(((s - t0_ns[0]) / 1e9, (now - s) / 1e6))

        def on_diag(arr):
            with lock:
                for st in arr.status:
                    if st.name.startswith("fornet_ros: "):
                        diag[st.name[len("fornet_ros: "):]] = {kv.key: kv.value for kv in st.values}
        for c in cams:
            node.create_subscription(Image, f"{c}/semantic/labels", on_labels, reliable)
        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, reliable)
        return ({c: node.create_publisher(Image, f"{c}/image_raw", reliable) for c in cams},
                {c: node.create_publisher(CameraInfo, f"{c}/camera_info", reliable) for c in cams})
    sent = dict.fromkeys(cams, 0)
    rss: list[tuple[float, float]] = []
    duration = minutes * 60.0
    with bench_graph("fornet_soak", [f"cameras:=[{','.join(cams)}]",
                                      f"costmap_enabled:={'true' if costmap else 'false'}", "use_tf:=false"],
                      checkpoint, threads, input_size, domain, setup) as g:
        node, (pubs, info_pubs) = g.node, g.io
        t_end = time.monotonic() + START_TIMEOUT_S
        while not all(node.count_subscribers(f"/{c}/image_raw") for c in cams) and time.monotonic() < t_end:
            time.sleep(0.1)
        while not all(diag.get(c, {}).get("processed", "0") != "0" for c in cams) and time.monotonic() < t_end:
            for c in cams:  # warm-up until every camera's outputs flow (not counted below)
                info_pubs[c].publish(info)
                m = msgs[c][0]
                m.header.stamp = node.get_clock().now().to_msg()
                pubs[c].publish(m)
            time.sleep(0.3)
        if g.proc.poll() is not None or not all(diag.get(c) for c in cams):
            raise RuntimeError(f"segmentation_node did not start (or no /diagnostics) within {START_TIMEOUT_S:.0f} s")
        time.sleep(SETTLE_S + DIAGNOSTICS_PERIOD_S)  # the baseline /diagnostics counts the whole warm-up
        with lock:
            base = {c: dict(diag[c]) for c in cams}
        t0 = time.monotonic()
        t0_ns[0] = node.get_clock().now().nanoseconds
        n, next_sample = 0, 0.0
        while (el := time.monotonic() - t0) < duration:
            if el >= next_sample:
                r = rss_mb(g.proc.pid)
                if r is not None:
                    rss.append((el, r))
                    if progress:
                        progress(f"soak {el / 60:5.2f} min  node RSS {r:7.1f} MB  labels {len(lat)}")
                next_sample += sample_s
            for c in cams:
                if n % max(1, int(rate)) == 0:
                    info_pubs[c].publish(info)
                m = msgs[c][n % 4]
                m.header.stamp = node.get_clock().now().to_msg()
                pubs[c].publish(m)
                sent[c] += 1
            n += 1
            time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
        r = rss_mb(g.proc.pid)
        if r is not None:
            rss.append((time.monotonic() - t0, r))
        time.sleep(DRAIN_S + DIAGNOSTICS_PERIOD_S)  # one more /diagnostics, with the last frames counted
        with lock:
            final = {c: dict(diag[c]) for c in cams}
            lat_all = list(lat)
        alive = g.proc.poll() is None
    code = g.exit_code

    def delta(c, k):
        return int(final[c].get(k, 0)) - int(base[c].get(k, 0))
    drops = ("dropped_overwritten", "dropped_stale", "bad_messages", "dropped_future_stamp")
    frames, exact = {}, True
    for c in cams:
        f = {"sent": sent[c], "received": delta(c, "received"), "processed": delta(c, "processed"),
             **{k: delta(c, k) for k in drops}, "lost_in_transport": delta(c, "lost_in_transport"),
             "errors": delta(c, "errors")}
        f["dropped"] = sum(f[k] for k in drops)
        f["received_eq_processed_plus_dropped"] = f["received"] == f["processed"] + f["dropped"]
        f["sent_eq_received_plus_lost"] = f["sent"] == f["received"] + f["lost_in_transport"]
        exact &= f["received_eq_processed_plus_dropped"] and f["sent_eq_received_plus_lost"]
        frames[c] = f
    warmup_s = min(120.0, 0.2 * duration)
    after = [p for p in rss if p[0] >= warmup_s]
    per_minute = []
    for m in range(int(math.ceil(duration / 60.0))):
        v = [x for t, x in lat_all if m * 60 <= t < (m + 1) * 60]
        per_minute.append({"minute": m, "frames": len(v), "latency_ms_p50": statistics.median(v) if v else None,
                           "latency_ms_p95": pct(v, 0.95) if v else None})
    p50_points = [(60.0 * r["minute"] + 30.0, r["latency_ms_p50"]) for r in per_minute
                  if r["latency_ms_p50"] is not None and 60.0 * r["minute"] >= warmup_s]
    total = {k: sum(f[k] for f in frames.values()) for k in ("sent", "received", "processed", "dropped",
                                                             "lost_in_transport", "errors")}
    slope = slope_per_min(after)
    return {"soak_minutes": minutes, "cameras": cameras, "size": [H, W], "rate_hz_per_camera": rate,
            "threads": threads, "costmap": costmap, "checkpoint": checkpoint or "(packaged default)",
            "sample_s": sample_s, "warmup_s": warmup_s,
            "rss_mb": [[round(t, 1), round(v, 2)] for t, v in rss],
            "rss_mb_start": rss[0][1] if rss else None, "rss_mb_end": rss[-1][1] if rss else None,
            "rss_mb_max": max(v for _, v in rss) if rss else None,
            "rss_slope_mb_per_min_after_warmup": slope, "rss_samples_after_warmup": len(after),
            "frames": frames, "frames_total": total, "accounting_exact": exact,
            "labels_received": len(lat_all), "latency_per_minute": per_minute,
            "latency_p50_slope_ms_per_min_after_warmup": slope_per_min(p50_points),
            "latency_ms_p50": statistics.median([v for _, v in lat_all]) if lat_all else None,
            "latency_ms_p95": pct([v for _, v in lat_all], 0.95) if lat_all else None,
            "node_alive_at_end": alive, "node_exit_code": code,
            "targets": {"rss_slope_mb_per_min_lt": 0.2, "latency_drift": "none", "accounting": "exact"}}
