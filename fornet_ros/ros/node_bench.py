"""``fornet bench-node``: segmentation_node end to end over DDS vs the model alone, and overload.

Publishes the same synthetic frames to a node in its own process at ``--rate`` Hz and measures,
per output, publish -> labels received (both stamps on the same machine's clock). The model
alone (Segmenter on the same frames, in this process, with the node stopped) is the baseline.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace


def _start(params, checkpoint, threads, input_size, domain):
    """The node in its own process on an isolated domain, with the benchmark's shared settings."""
    from .processes import isolated_env, start_node
    env = isolated_env(domain)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        params = [*params, f"threads:={threads}"]
    if checkpoint:
        params = [*params, f"checkpoint:={checkpoint}"]
    if input_size:
        params = [*params, f"input_size:=[{input_size[0]}, {input_size[1]}]"]
    return start_node(params, env)


@contextmanager
def _bench_graph(name, params, checkpoint, threads, input_size, domain, setup):
    """segmentation_node in its own process and our rclpy node ``name`` beside it. ``setup(node)``
    creates our publishers and subscriptions (before the spin thread starts); its result is
    ``g.io``. Yields ``g`` (``proc``, ``node``, ``io``); whatever ends the benchmark, the spin
    thread stops, the node gets SIGINT (``g.exit_code``) and our node and context go."""
    import rclpy

    from .processes import Spinner, stop_node
    g = SimpleNamespace(proc=_start(params, checkpoint, threads, input_size, domain), node=None, io=None,
                        exit_code=None)
    try:
        rclpy.init(domain_id=domain)
        g.node = rclpy.create_node(name)
        g.io = setup(g.node)
        spinner = Spinner(g.node)
        try:
            yield g
        finally:
            spinner.close()
    finally:
        g.exit_code = stop_node(g.proc)
        if g.node is not None:
            g.node.destroy_node()
        rclpy.try_shutdown()


def _wait_subscribed(g, topic: str, deadline: float) -> None:
    """Until the node subscribes to ``topic`` (or ``deadline``, monotonic); a node that exited fails."""
    while g.node.count_subscribers(topic) == 0 and time.monotonic() < deadline:
        _check_alive(g.proc)
        time.sleep(0.1)
    _check_alive(g.proc)


def _check_alive(proc) -> None:
    """A node that exited (bad parameter, model that cannot run) fails the benchmark with its code,
    instead of a run over nothing."""
    if proc.poll() is not None:
        from ..errors import FornetError
        raise FornetError(f"segmentation_node exited with code {proc.returncode} before the benchmark started "
                          "(run it alone with the same parameters to see why)")


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


OPTIONAL_OUTPUTS = ("color", "importance", "confidence", "overlay")


def _node_run(checkpoint, frames, rate, seconds, threads, domain, input_size, outputs: str) -> dict:
    """One node process; frames published at ``rate`` for ``seconds``. ``outputs``: 'labels' (only
    labels subscribed) or 'all' (every image output subscribed: a frame's latency is publish ->
    the last of its outputs received)."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from ..node.frames import stamp_ns
    from .conversions import fill_image

    topics = ["labels"] + (list(OPTIONAL_OUTPUTS) if outputs == "all" else [])
    arrivals, lock = {}, threading.Lock()  # stamp -> {output: latency ms}

    def setup(node):
        def on_output(msg, out):
            now = node.get_clock().now().nanoseconds
            s = stamp_ns(msg.header.stamp)
            with lock:
                arrivals.setdefault(s, {})[out] = (now - s) / 1e6
        for out in topics:
            node.create_subscription(Image, f"cam/semantic/{out}", lambda m, o=out: on_output(m, o),
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        return node.create_publisher(Image, "cam/image_raw", QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))

    def complete():
        with lock:
            return [max(v.values()) for v in arrivals.values() if len(v) == len(topics)]
    with _bench_graph("fornet_bench_node", ["cameras:=[cam]", "costmap_enabled:=false"], checkpoint, threads,
                      input_size, domain, setup) as g:
        node, pub = g.node, g.io
        t_end = time.monotonic() + 120
        _wait_subscribed(g, "/cam/image_raw", t_end)
        while not complete() and time.monotonic() < t_end:  # warm-up until every output flows
            _check_alive(g.proc)
            pub.publish(fill_image(Image(), frames[0], Header(stamp=node.get_clock().now().to_msg()), "rgb8"))
            time.sleep(0.3)
        time.sleep(1.0)
        with lock:
            arrivals.clear()
        sent, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            hdr = Header(stamp=node.get_clock().now().to_msg(), frame_id="cam")
            pub.publish(fill_image(Image(), frames[sent % len(frames)], hdr, "rgb8"))
            sent += 1
            time.sleep(max(0.0, t0 + sent / rate - time.monotonic()))
        time.sleep(2.0)
        e2e = complete()
    return {"outputs": outputs, "sent": sent, "processed": len(e2e), "processed_hz": len(e2e) / seconds,
            "dropped": sent - len(e2e), "node_e2e_ms_p50": statistics.median(e2e) if e2e else None,
            "node_e2e_ms_p95": _pct(e2e, 0.95), "node_e2e_ms_max": max(e2e) if e2e else None}


def bench_node(checkpoint, size, rate: float, seconds: float, threads: int | None, domain: int = 77,
               input_size=None, outputs=("labels", "all")) -> dict:
    """The node end to end (one run per ``outputs`` mode) and the model alone on the same frames,
    in one command: ``overhead_ratio_p50`` = node e2e p50 / model alone p50 per mode."""
    from ..inference import Segmenter
    from ..tools.synthetic import make_scene

    H, W = size
    frames = [make_scene(H, W, seed=i)[0] for i in range(4)]
    runs = [_node_run(checkpoint, frames, rate, seconds, threads, domain, input_size, o) for o in outputs]
    # the model alone on the same frames, same thread count, after the nodes are gone
    import torch
    if threads:
        torch.set_num_threads(threads)
    seg = Segmenter.from_checkpoint(checkpoint, device="auto", input_size=input_size)  # as the node picks
    for f in frames[:2]:
        seg(f)
    alone = []
    for i in range(max(10, min(40, max(r["processed"] for r in runs)))):
        t = time.perf_counter()
        seg(frames[i % len(frames)], outputs=())  # labels only: what every node run needs at least
        alone.append((time.perf_counter() - t) * 1000)
    alone_p50 = statistics.median(alone)
    for r in runs:
        r["overhead_ratio_p50"] = r["node_e2e_ms_p50"] / alone_p50 if r["node_e2e_ms_p50"] else None
    return {"size": [H, W], "rate_hz": rate, "seconds": seconds, "backend": seg.backend, "provider": seg.provider,
            "threads": torch.get_num_threads(), "model_alone_ms_p50": alone_p50, "runs": runs,
            "targets": {"overhead_ratio_p50_labels_le": 1.10, "overhead_ratio_p50_all_le": 1.25}}


# -- soak -------------------------------------------------------------------------------------
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
    with _bench_graph("fornet_soak", [f"cameras:=[{','.join(cams)}]",
                                      f"costmap_enabled:={'true' if costmap else 'false'}", "use_tf:=false"],
                      checkpoint, threads, input_size, domain, setup) as g:
        node, (pubs, info_pubs) = g.node, g.io
        t_end = time.monotonic() + 120
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
            raise RuntimeError("segmentation_node did not start (or no /diagnostics) within 120 s")
        time.sleep(2.0)
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
        time.sleep(3.0)  # drain: the last frames processed and counted in /diagnostics
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
                           "latency_ms_p95": _pct(v, 0.95) if v else None})
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
            "latency_ms_p95": _pct([v for _, v in lat_all], 0.95) if lat_all else None,
            "node_alive_at_end": alive, "node_exit_code": code,
            "targets": {"rss_slope_mb_per_min_lt": 0.2, "latency_drift": "none", "accounting": "exact"}}


# -- load step (issue #15): the latency K controller off vs on ------------------------------------
def _burner():
    """A CPU-bound competitor: a separate Python process spinning one core."""
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def _load_step_run(checkpoint, frames, rate, seconds, threads, domain, input_size, params, step_at_s,
                   load_procs, second_camera, progress=None) -> dict:
    """One node run with the step: at ``step_at_s`` start ``load_procs`` CPU burners and (with
    ``second_camera``) a second camera publishing at ``rate``. Series of (t, latency ms) per labels
    message and (t, K) from semantic/topk_ratio, t in seconds since the start of publishing."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32, Header

    from ..node.frames import stamp_ns
    from .conversions import fill_image

    cams = ["cam0", "cam1"]
    lock, lat, ks, t0 = threading.Lock(), [], [], [None]

    def setup(node):
        def on_labels(msg, cam):
            now = node.get_clock().now().nanoseconds
            s = stamp_ns(msg.header.stamp)
            with lock:
                if t0[0] is not None and s >= t0[0]:
                    lat.append(((s - t0[0]) / 1e9, (now - s) / 1e6, cam))

        def on_k(msg):
            with lock:
                t = 0.0 if t0[0] is None else (node.get_clock().now().nanoseconds - t0[0]) / 1e9
                ks.append((max(0.0, t), float(msg.data)))
        for c in cams:
            node.create_subscription(Image, f"{c}/semantic/labels", lambda m, c=c: on_labels(m, c),
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(Float32, "semantic/topk_ratio", on_k,
                                 QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        return {c: node.create_publisher(Image, f"{c}/image_raw", best_effort) for c in cams}
    burners = []
    with _bench_graph("fornet_load_step", [f"cameras:=[{','.join(cams)}]", "costmap_enabled:=false", *params],
                      checkpoint, threads, input_size, domain, setup) as g:
        node, pubs = g.node, g.io
        try:
            _wait_subscribed(g, "/cam0/image_raw", time.monotonic() + 120)
            for _ in range(10):  # warm-up (not counted)
                pubs["cam0"].publish(fill_image(Image(), frames[0], Header(stamp=node.get_clock().now().to_msg()),
                                                "rgb8"))
                time.sleep(1.0 / rate)
            time.sleep(1.0)
            start = time.monotonic()
            with lock:
                t0[0] = node.get_clock().now().nanoseconds
            n, stepped = 0, False
            while (el := time.monotonic() - start) < seconds:
                if not stepped and el >= step_at_s:
                    burners = [_burner() for _ in range(load_procs)]
                    stepped = True
                    if progress:
                        progress(f"load step at {el:.1f} s: {load_procs} CPU burner(s)"
                                 + (" + a second camera" if second_camera else ""))
                hdr = Header(stamp=node.get_clock().now().to_msg(), frame_id="cam0")
                pubs["cam0"].publish(fill_image(Image(), frames[n % len(frames)], hdr, "rgb8"))
                if stepped and second_camera:
                    hdr = Header(stamp=hdr.stamp, frame_id="cam1")
                    pubs["cam1"].publish(fill_image(Image(), frames[(n + 1) % len(frames)], hdr, "rgb8"))
                n += 1
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
            time.sleep(2.0)
            with lock:
                series, k_series = list(lat), list(ks)
        finally:
            for b in burners:
                b.kill()
                b.wait()

    def phase(lo, hi):
        v = [x for t, x, _ in series if lo <= t < hi]
        return {"frames": len(v), "latency_ms_p50": statistics.median(v) if v else None,
                "latency_ms_p95": _pct(v, 0.95) if v else None}
    settle = min(5.0, 0.25 * (seconds - step_at_s))
    return {"params": params, "latency": [[round(t, 3), round(x, 2), c] for t, x, c in series],
            "k": [[round(t, 3), k] for t, k in k_series],
            "before_step": phase(0.0, step_at_s), "after_step": phase(step_at_s, seconds),
            "after_step_settled": phase(step_at_s + settle, seconds), "settle_s": settle}


def load_step(checkpoint, size, rate: float, seconds: float, threads: int | None, domain: int, input_size,
              target_ms: float, topk: float, k_min: float, k_max: float, step_at_s: float, load_procs: int = 1,
              second_camera: bool = True, progress=None) -> dict:
    """The same load step twice: fixed K = ``topk`` (controller off), then the latency controller
    on (``latency_target_ms`` = ``target_ms``, K in [k_min, k_max])."""
    from ..tools.synthetic import make_scene
    H, W = size
    frames = [make_scene(H, W, seed=i)[0] for i in range(4)]
    runs = {}
    for name, params in (("fixed_k", [f"topk_ratio:={topk}", "latency_target_ms:=0.0"]),
                         ("controller", [f"topk_ratio:={topk}", f"latency_target_ms:={target_ms}",
                                         f"k_min:={k_min}", f"k_max:={k_max}"])):
        if progress:
            progress(f"run {name}: {' '.join(params)}")
        runs[name] = _load_step_run(checkpoint, frames, rate, seconds, threads, domain, input_size, params,
                                    step_at_s, load_procs, second_camera, progress)
    return {"size": [H, W], "input_size": list(input_size) if input_size else None, "rate_hz_per_camera": rate,
            "seconds": seconds, "threads": threads, "step_at_s": step_at_s, "load_procs": load_procs,
            "second_camera": second_camera, "target_ms": target_ms, "topk_fixed": topk, "k_min": k_min,
            "k_max": k_max, "checkpoint": checkpoint or "(packaged default)", "runs": runs,
            "target": "controller: p95 after the step <= target_ms while fixed K overshoots it"}


def plot_load_step(result: dict, path) -> None:
    """Latency (per frame, with a 2-s rolling p95) and K vs time, both runs, one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    fig, axes = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 1.4])
    colors = {"fixed_k": "tab:red", "controller": "tab:blue"}
    for name, run in result["runs"].items():
        lat = np.array([[t, x] for t, x, _ in run["latency"]]) if run["latency"] else np.zeros((0, 2))
        if len(lat):
            axes[0].scatter(lat[:, 0], lat[:, 1], s=4, alpha=0.35, color=colors[name])
            grid = np.arange(2.0, result["seconds"] + 0.01, 0.5)
            p95 = [np.percentile(lat[(lat[:, 0] > g - 2) & (lat[:, 0] <= g), 1], 95)
                   if ((lat[:, 0] > g - 2) & (lat[:, 0] <= g)).any() else np.nan for g in grid]
            label = "fixed K = %g" % result["topk_fixed"] if name == "fixed_k" else "controller on"
            axes[0].plot(grid, p95, color=colors[name], lw=2, label=f"{label}: rolling 2-s p95")
        k = run["k"] + [[result["seconds"], run["k"][-1][1]]] if run["k"] else []
        if k:
            k = np.array(k)
            axes[1].step(k[:, 0], k[:, 1], where="post", color=colors[name], lw=2)
    for ax in axes:
        ax.axvline(result["step_at_s"], color="k", ls=":", lw=1)
    axes[0].axhline(result["target_ms"], color="k", ls="--", lw=1, label=f"target {result['target_ms']:g} ms")
    axes[0].set_ylabel("publish -> labels (ms)")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].set_ylabel("K in use")
    axes[1].set_xlabel("time (s); dotted: load step (%d CPU burner(s)%s)"
                       % (result["load_procs"], " + second camera" if result["second_camera"] else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
