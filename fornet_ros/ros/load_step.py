"""``fornet bench-node --load-step`` (issue #15): the latency K controller off vs on under a step of CPU
load and a second camera; the latency and K series and their plot."""

from __future__ import annotations

import statistics
import threading
import time

from .processes import DRAIN_S, SETTLE_S, START_TIMEOUT_S, bench_graph, pct, subscribe_diagnostics, wait_subscribed


def _burner():
    """A CPU-bound competitor: a separate Python process spinning one core."""
    import subprocess
    import sys
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def latency_phase(series, lo: float, hi: float = float("inf")) -> dict:
    """Frames, p50 and p95 of the latencies of ``series`` ((t s, latency ms, camera)) with lo <= t < hi."""
    v = [x for t, x, _ in series if lo <= t < hi]
    return {"frames": len(v), "latency_ms_p50": statistics.median(v) if v else None,
            "latency_ms_p95": pct(v, 0.95) if v else None}


def _stop(burners: list) -> None:
    while burners:
        b = burners.pop()
        b.kill()
        b.wait()


def _load_step_run(checkpoint, frames, rate, seconds, threads, domain, input_size, params, step_at_s,
                   load_procs, second_camera, progress=None, load_until_s=None) -> dict:
    """One node run with the step: at ``step_at_s`` start ``load_procs`` CPU burners and (with
    ``second_camera``) a second camera publishing at ``rate``; with ``load_until_s`` the burners stop
    then (a slow spell). Series of (t, latency ms) per labels
    message and (t, K) from semantic/topk_ratio, t in seconds since the start of publishing; and the
    node's last /diagnostics ``k_controller`` value for cam0 (off, or the target, p95 and saturation)."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Float32, Header

    from ..node.frames import stamp_ns
    from .conversions import fill_image

    cams = ["cam0", "cam1"]
    lock, lat, ks, t0 = threading.Lock(), [], [], [None]
    diags = {}  # the node's last /diagnostics values per camera (cam0's k_controller: its K controller's account)

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
        subscribe_diagnostics(node, diags, lock)
        for c in cams:
            node.create_subscription(Image, f"{c}/semantic/labels", lambda m, c=c: on_labels(m, c),
                                     QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(Float32, "semantic/topk_ratio", on_k,
                                 QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                            durability=DurabilityPolicy.TRANSIENT_LOCAL))
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        return {c: node.create_publisher(Image, f"{c}/image_raw", best_effort) for c in cams}
    burners = []
    with bench_graph("fornet_load_step", [f"cameras:=[{','.join(cams)}]", "costmap_enabled:=false", *params],
                      checkpoint, threads, input_size, domain, setup) as g:
        node, pubs = g.node, g.io
        try:
            wait_subscribed(g, "/cam0/image_raw", time.monotonic() + START_TIMEOUT_S)
            for _ in range(10):  # warm-up (not counted)
                pubs["cam0"].publish(fill_image(Image(), frames[0], Header(stamp=node.get_clock().now().to_msg()),
                                                "rgb8"))
                time.sleep(1.0 / rate)
            time.sleep(SETTLE_S)
            start = time.monotonic()
            with lock:
                t0[0] = node.get_clock().now().nanoseconds
            n, stepped = 0, False
            while (el := time.monotonic() - start) < seconds:
                if burners and load_until_s is not None and el >= load_until_s:
                    _stop(burners)
                    if progress:
                        progress(f"load off at {el:.1f} s")
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
            time.sleep(DRAIN_S)
            with lock:
                series, k_series, k_controller = list(lat), list(ks), diags.get("cam0", {}).get("k_controller")
        finally:
            _stop(burners)

    settle = min(5.0, 0.25 * (seconds - step_at_s))
    return {"params": params, "latency": [[round(t, 3), round(x, 2), c] for t, x, c in series],
            "k": [[round(t, 3), k] for t, k in k_series], "k_controller": k_controller,
            "before_step": latency_phase(series, 0.0, step_at_s), "after_step": latency_phase(series, step_at_s, seconds),
            "after_step_settled": latency_phase(series, step_at_s + settle, seconds), "settle_s": settle}


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
