"""Running segmentation_node in its own process beside an rclpy node of ours (demo, benchmarks), and the
graph the node benchmarks share (bench-node, soak, load step)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

CONFIG = Path(__file__).resolve().parents[2] / "config"
# The node benchmarks' pauses (bench-node, soak, load step), by what each waits for:
START_TIMEOUT_S = 120.0  # the node's start-up: model load, first subscription, first outputs
SETTLE_S = 1.0  # after the warm-up frames: the node's queues empty before the measured run starts
DRAIN_S = 2.0  # after the last frame: the node finishes the frames in flight and publishes them
DIAG_PREFIX = "fornet_ros: "  # the node's /diagnostics: one status per camera, named "fornet_ros: <camera>"


def isolated_env(domain: int) -> dict:
    """Environment for a DDS graph on loopback only, on its own domain; also applied to this
    process so that rclpy.init() here joins the same graph."""
    env = {"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    profile = CONFIG / "fastdds_large_images.xml"
    if profile.is_file():
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    os.environ.update(env)
    return {**os.environ, **env}


NODE_MODULE = "fornet_ros.ros.segmentation_node"
FLOOR_MODULE = "fornet_ros.ros.transport_floor"  # the node's DDS traffic without a model (bench-node's floor)


def start_node(params: list[str], env: dict, stdout=subprocess.DEVNULL, module: str = NODE_MODULE) -> subprocess.Popen:
    cmd = [sys.executable, "-m", module, "--ros-args"] + sum((["-p", p] for p in params), [])
    return subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT)


def stop_node(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT, then kill if it does not exit within ``timeout``."""
    proc.send_signal(2)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Spinner:
    """Spins an rclpy node in a background thread until closed."""

    def __init__(self, node):
        import rclpy
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=lambda: [rclpy.spin_once(node, timeout_sec=0.02) for _ in iter(self._stop.is_set, True)], daemon=True)
        self._thread.start()

    def close(self):
        self._stop.set()
        self._thread.join(2)


# -- a node under benchmark (bench-node, soak, load step) -------------------------------------
def start_bench_node(params, checkpoint, threads, input_size, domain, module: str = NODE_MODULE):
    """The node (or ``module``) in its own process on an isolated domain, with the benchmark's shared settings."""
    env = isolated_env(domain)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        params = [*params, f"threads:={threads}"]
    if checkpoint:
        params = [*params, f"checkpoint:={checkpoint}"]
    if input_size:
        params = [*params, f"input_size:=[{input_size[0]}, {input_size[1]}]"]
    return start_node(params, env, module=module)


@contextmanager
def bench_graph(name, params, checkpoint, threads, input_size, domain, setup, module: str = NODE_MODULE):
    """segmentation_node (or ``module``) in its own process and our rclpy node ``name`` beside it. ``setup(node)``
    creates our publishers and subscriptions (before the spin thread starts); its result is
    ``g.io``. Yields ``g`` (``proc``, ``node``, ``io``); whatever ends the benchmark, the spin
    thread stops, the node gets SIGINT (``g.exit_code``) and our node and context go."""
    import rclpy

    g = SimpleNamespace(proc=start_bench_node(params, checkpoint, threads, input_size, domain, module), node=None, io=None,
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


def subscribe_diagnostics(node, values: dict, lock) -> None:
    """Subscribe ``node`` to /diagnostics: ``values[camera]`` becomes the key/value dict of the
    segmentation node's last status for that camera (written under ``lock``)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    def on_diag(arr):
        with lock:
            for st in arr.status:
                if st.name.startswith(DIAG_PREFIX):
                    values[st.name[len(DIAG_PREFIX):]] = {kv.key: kv.value for kv in st.values}
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag,
                             QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))


def wait_subscribed(g, topic: str, deadline: float) -> None:
    """Until the node subscribes to ``topic`` (or ``deadline``, monotonic); a node that exited fails."""
    while g.node.count_subscribers(topic) == 0 and time.monotonic() < deadline:
        check_alive(g.proc)
        time.sleep(0.1)
    check_alive(g.proc)


def check_alive(proc) -> None:
    """A node that exited (bad parameter, model that cannot run) fails the benchmark with its code,
    instead of a run over nothing."""
    if proc.poll() is not None:
        from ..errors import FornetError
        raise FornetError(f"segmentation_node exited with code {proc.returncode} before the benchmark started "
                          "(run it alone with the same parameters to see why)")


def pct(v, q):
    """The ``q`` (0..1) quantile of ``v`` by nearest rank; NaN when ``v`` is empty."""
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
