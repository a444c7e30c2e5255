"""``fornet bench-node --soak``: segmentation_node for minutes with synthetic cameras; its memory slope,
latency drift and exact frame accounting (sent = received + lost; received = processed + dropped)."""

from __future__ import annotations

import math
import statistics
import threading
import time

from ..node.params import NodeParams
from .processes import bench_graph, pct, subscribe_diagnostics

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


STARTUP_S = 120.0  # the node must subscribe and answer every camera within this long
SETTLE_S = 2.0  # after the warm-up, before the counters' baseline is read
DRAIN_S = 3.0  # after the run: the last frames processed and counted in /diagnostics
WARMUP_SHARE, WARMUP_MAX_S = 0.2, 120.0  # RSS slope from here on: 2 minutes, or 20 % of a shorter run
DROPS = ("dropped_overwritten", "dropped_stale", "bad_messages", "dropped_future_stamp")


class _Graph:
    """Our side of the soak: a publisher of synthetic frames and a CameraInfo per camera, the labels'
    latency by publication time, and the node's /diagnostics values per camera."""

    def __init__(self, cams: list, size):
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import Header

        from ..tools.synthetic import make_scene
        from .conversions import fill_image
        H, W = size
        self.cams, self.lock = cams, threading.Lock()
        self.info = CameraInfo(height=H, width=W, distortion_model="plumb_bob",
                               k=[W / 2.0, 0.0, W / 2.0, 0.0, W / 2.0, H / 2.0, 0.0, 0.0, 1.0])
        self.msgs = {c: [fill_image(Image(), make_scene(H, W, seed=4 * i + j)[0], Header(frame_id=c), "rgb8")
                         for j in range(4)] for i, c in enumerate(cams)}
        self.lat: list[tuple[float, float]] = []  # (publication s since t0, latency ms)
        self.diag: dict[str, dict] = {}
        self.t0_ns = None
        self.node = self.pubs = self.info_pubs = None

    def setup(self, node):
        """bench_graph's set-up: our subscriptions and publishers on ``node``."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        for c in self.cams:
            node.create_subscription(Image, f"{c}/semantic/labels", self._on_labels, reliable)
        subscribe_diagnostics(node, self.diag, self.lock)
        self.pubs = {c: node.create_publisher(Image, f"{c}/image_raw", reliable) for c in self.cams}
        self.info_pubs = {c: node.create_publisher(CameraInfo, f"{c}/camera_info", reliable) for c in self.cams}

    def _on_labels(self, msg):
        from ..node.frames import stamp_ns
        now, s = self.node.get_clock().now().nanoseconds, stamp_ns(msg.header.stamp)
        with self.lock:
            if self.t0_ns is not None and s >= self.t0_ns:
                self.lat.append(((s - self.t0_ns) / 1e9, (now - s) / 1e6))

    def publish(self, c: str, n: int, info: bool) -> None:
        """Camera ``c``'s frame ``n`` (one of 4 scenes), stamped now; its CameraInfo first with ``info``."""
        if info:
            self.info_pubs[c].publish(self.info)
        m = self.msgs[c][n % 4]
        m.header.stamp = self.node.get_clock().now().to_msg()
        self.pubs[c].publish(m)

    def counters(self) -> dict:
        with self.lock:
            return {c: dict(self.diag.get(c, {})) for c in self.cams}


def _warm_up(g, graph: _Graph) -> None:
    """Until every camera is subscribed and its outputs flow (frames not counted below)."""
    t_end = time.monotonic() + STARTUP_S
    while not all(g.node.count_subscribers(f"/{c}/image_raw") for c in graph.cams) and time.monotonic() < t_end:
        time.sleep(0.1)
    while not all(graph.counters()[c].get("processed", "0") != "0" for c in graph.cams) and time.monotonic() < t_end:
        for c in graph.cams:
            graph.publish(c, 0, info=True)
        time.sleep(0.3)
    if g.proc.poll() is not None or not all(graph.counters().values()):
        raise RuntimeError(f"segmentation_node did not start (or no /diagnostics) within {STARTUP_S:.0f} s")


def _publish_for(g, graph: _Graph, rate: float, duration: float, sample_s: float, progress) -> tuple[dict, list]:
    """Every camera at ``rate`` Hz for ``duration`` s (a CameraInfo once a second), the node's RSS every
    ``sample_s`` s and once at the end; returns (frames sent per camera, [(s, RSS MB)])."""
    sent, rss = dict.fromkeys(graph.cams, 0), []
    t0 = time.monotonic()
    graph.t0_ns = g.node.get_clock().now().nanoseconds
    n, next_sample = 0, 0.0
    while (el := time.monotonic() - t0) < duration:
        if el >= next_sample:
            r = rss_mb(g.proc.pid)
            if r is not None:
                rss.append((el, r))
                if progress:
                    progress(f"soak {el / 60:5.2f} min  node RSS {r:7.1f} MB  labels {len(graph.lat)}")
            next_sample += sample_s
        for c in graph.cams:
            graph.publish(c, n, info=n % max(1, int(rate)) == 0)
            sent[c] += 1
        n += 1
        time.sleep(max(0.0, t0 + n / rate - time.monotonic()))
    r = rss_mb(g.proc.pid)
    if r is not None:
        rss.append((time.monotonic() - t0, r))
    return sent, rss


def frame_accounting(sent: dict, base: dict, final: dict) -> tuple[dict, bool]:
    """Per camera: frames sent (ours) and the node's counters over the run (``final`` - ``base``), with
    the two identities checked; returns (frames per camera, both identities hold for every camera)."""
    frames, exact = {}, True
    for c in sent:
        def delta(k):
            return int(final[c].get(k, 0)) - int(base[c].get(k, 0))
        f = {"sent": sent[c], "received": delta("received"), "processed": delta("processed"),
             **{k: delta(k) for k in DROPS}, "lost_in_transport": delta("lost_in_transport"), "errors": delta("errors")}
        f["dropped"] = sum(f[k] for k in DROPS)
        f["received_eq_processed_plus_dropped"] = f["received"] == f["processed"] + f["dropped"]
        f["sent_eq_received_plus_lost"] = f["sent"] == f["received"] + f["lost_in_transport"]
        exact &= f["received_eq_processed_plus_dropped"] and f["sent_eq_received_plus_lost"]
        frames[c] = f
    return frames, exact


def latency_per_minute(lat: list, duration: float, warmup_s: float) -> tuple[list, float | None]:
    """[(publication s, latency ms)] -> (p50 / p95 per minute of the run, the slope of the per-minute
    p50 after ``warmup_s`` in ms per minute)."""
    per_minute = []
    for m in range(int(math.ceil(duration / 60.0))):
        v = [x for t, x in lat if m * 60 <= t < (m + 1) * 60]
        per_minute.append({"minute": m, "frames": len(v), "latency_ms_p50": statistics.median(v) if v else None,
                           "latency_ms_p95": pct(v, 0.95) if v else None})
    p50_points = [(60.0 * r["minute"] + 30.0, r["latency_ms_p50"]) for r in per_minute
                  if r["latency_ms_p50"] is not None and 60.0 * r["minute"] >= warmup_s]
    return per_minute, slope_per_min(p50_points)


def soak_node(checkpoint, size, rate: float, minutes: float, threads: int | None, domain: int = 77,
              input_size=None, cameras: int = 1, sample_s: float = 10.0, costmap: bool = True,
              progress=None) -> dict:
    """Run segmentation_node for ``minutes`` with ``cameras`` cameras each publishing at ``rate`` Hz
    (synthetic frames of ``size`` stamped at publication, a CameraInfo per camera, costmap on).

    Every ``sample_s`` s: the node process's RSS. After the run (and a drain of DRAIN_S): the RSS
    slope (least squares, MB/min) after the warm-up (2 minutes, or 20 % of a shorter run), frames
    sent / received / processed / dropped per camera from the node's own /diagnostics counters
    with the two identities checked (received = processed + dropped; sent = received +
    lost_in_transport), and the publish -> labels latency p50/p95 per minute (by publication time)."""
    graph = _Graph([f"cam{i}" for i in range(cameras)], size)
    duration = minutes * 60.0
    with bench_graph("fornet_soak", [f"cameras:=[{','.join(graph.cams)}]",
                                      f"costmap_enabled:={'true' if costmap else 'false'}", "use_tf:=false"],
                     checkpoint, threads, input_size, domain, graph.setup) as g:
        _warm_up(g, graph)
        time.sleep(SETTLE_S)
        base = graph.counters()
        sent, rss = _publish_for(g, graph, rate, duration, sample_s, progress)
        time.sleep(DRAIN_S)
        final = graph.counters()
        with graph.lock:
            lat_all = list(graph.lat)
        alive = g.proc.poll() is None
    frames, exact = frame_accounting(sent, base, final)
    warmup_s = min(WARMUP_MAX_S, WARMUP_SHARE * duration)
    after = [p for p in rss if p[0] >= warmup_s]
    per_minute, p50_slope = latency_per_minute(lat_all, duration, warmup_s)
    total = {k: sum(f[k] for f in frames.values()) for k in ("sent", "received", "processed", "dropped",
                                                             "lost_in_transport", "errors")}
    lats = [v for _, v in lat_all]
    return {"soak_minutes": minutes, "cameras": cameras, "size": list(size), "rate_hz_per_camera": rate,
            "threads": threads, "costmap": costmap, "checkpoint": checkpoint or "(packaged default)",
            "sample_s": sample_s, "warmup_s": warmup_s,
            "rss_mb": [[round(t, 1), round(v, 2)] for t, v in rss],
            "rss_mb_start": rss[0][1] if rss else None, "rss_mb_end": rss[-1][1] if rss else None,
            "rss_mb_max": max(v for _, v in rss) if rss else None,
            "rss_slope_mb_per_min_after_warmup": slope_per_min(after), "rss_samples_after_warmup": len(after),
            "frames": frames, "frames_total": total, "accounting_exact": exact,
            "labels_received": len(lat_all), "latency_per_minute": per_minute,
            "latency_p50_slope_ms_per_min_after_warmup": p50_slope,
            "latency_ms_p50": statistics.median(lats) if lats else None,
            "latency_ms_p95": pct(lats, 0.95) if lats else None,
            "node_alive_at_end": alive, "node_exit_code": g.exit_code,
            "targets": {"rss_slope_mb_per_min_lt": 0.2, "latency_drift": "none", "accounting": "exact"}}
