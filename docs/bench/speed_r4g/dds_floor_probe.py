"""Probe (session 8, not a tool): the DDS cost of the node's five 720x1280 outputs, publisher process ->
subscriber process, no model. Run both roles on one domain (source scripts/env.sh first; the Fast DDS
profile comes from FASTDDS_DEFAULT_PROFILES_FILE):
    python dds_floor_probe.py sub 5 5 15 [spin_once|single|multi|spin_once_raw] & python dds_floor_probe.py pub 5 5 15
Knobs by environment: BE=1 best-effort QoS, PAR=1 one publishing thread per output. Results in
dds_floor_probe.txt; `fornet bench-node` measures the same floor in every run (transport_floor)."""
import sys, time, threading, statistics, array
import numpy as np
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from fornet_ros.ros.conversions import fill_image
from fornet_ros.node.frames import stamp_ns

role, n, rate, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "spin_once"
H, W = 720, 1280
OUTS = [("labels", 1), ("color", 3), ("importance", 1), ("confidence", 1), ("overlay", 3)][:n]
rclpy.init()
node = rclpy.create_node("probe_" + role)
import os
q = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT if os.environ.get("BE") else ReliabilityPolicy.RELIABLE)
if role == "pub":
    pubs = {o: node.create_publisher(Image, f"p/{o}", q) for o, _ in OUTS}
    rng = np.random.default_rng(0)
    arrs = {o: rng.integers(0, 255, (H, W, c) if c == 3 else (H, W), dtype=np.uint8) for o, c in OUTS}
    while any(p.get_subscription_count() == 0 for p in pubs.values()):
        time.sleep(0.1)
    time.sleep(1.0)
    pub_ms = []
    t0 = time.monotonic(); k = 0
    while time.monotonic() - t0 < secs:
        hdr = Header(stamp=node.get_clock().now().to_msg())
        t = time.perf_counter()
        if os.environ.get("PAR"):
            ths = [threading.Thread(target=lambda o=o: pubs[o].publish(fill_image(Image(), arrs[o], hdr))) for o, _ in OUTS]
            [x.start() for x in ths]; [x.join() for x in ths]
        else:
            for o, _ in OUTS:
                pubs[o].publish(fill_image(Image(), arrs[o], hdr))
        pub_ms.append((time.perf_counter() - t) * 1000)
        k += 1
        time.sleep(max(0, t0 + k / rate - time.monotonic()))
    print(f"PUB publish-call ms p50 {statistics.median(pub_ms):.2f} p95 {sorted(pub_ms)[int(.95*len(pub_ms))]:.2f}", flush=True)
    time.sleep(2)
else:
    arr, lock = {}, threading.Lock()
    def cb(m, o):
        now = node.get_clock().now().nanoseconds
        s = stamp_ns(m.header.stamp)
        with lock:
            arr.setdefault(s, {})[o] = (now - s) / 1e6
    raw = mode.endswith("raw")
    def cbraw(b, o):
        now = node.get_clock().now().nanoseconds
        # header.stamp is the first field of the CDR payload after the 4-byte encapsulation header
        import struct
        sec, ns = struct.unpack_from("<iI", b, 4)
        s = sec * 10**9 + ns
        with lock:
            arr.setdefault(s, {})[o] = (now - s) / 1e6
    for o, _ in OUTS:
        node.create_subscription(Image, f"p/{o}", (lambda m, o=o: cbraw(m, o)) if raw else (lambda m, o=o: cb(m, o)), q, raw=raw)
    t_end = time.monotonic() + secs + 8
    if mode.startswith("spin_once"):
        while time.monotonic() < t_end:
            rclpy.spin_once(node, timeout_sec=0.02)
    else:
        from rclpy.executors import SingleThreadedExecutor, MultiThreadedExecutor
        ex = SingleThreadedExecutor() if mode == "single" else MultiThreadedExecutor(4)
        ex.add_node(node)
        while time.monotonic() < t_end:
            ex.spin_once(timeout_sec=0.02)
    done = [max(v.values()) for v in arr.values() if len(v) == n]
    first = [min(v.values()) for v in arr.values() if len(v) == n]
    done.sort(); first.sort()
    print(f"SUB n={n} mode={mode} frames={len(done)} last p50 {statistics.median(done):.2f} p95 {done[int(.95*len(done))]:.2f} first p50 {statistics.median(first):.2f}", flush=True)
