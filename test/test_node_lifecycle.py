"""Issue #23.1: segmentation_node as a managed (lifecycle) node, driven from another process over
real DDS through the lifecycle_msgs services (change_state, get_state), as nav2_lifecycle_manager
and `ros2 lifecycle set` drive it."""

import os
import time
from pathlib import Path

import pytest

from ros_harness import Collector, ros_env, start_node

DOMAIN = 140 + os.getpid() % 40
NODE = "fornet_segmentation"
PRIMARY = ("unconfigured", "inactive", "active", "finalized")  # lifecycle states outside a transition


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class Manager:
    """The lifecycle_msgs clients of a manager, on the test's node."""

    def __init__(self, col: Collector, log: Path):
        from lifecycle_msgs.srv import ChangeState, GetState
        self.col, self.log = col, log
        self.change = col.node.create_client(ChangeState, f"/{NODE}/change_state")
        self.get = col.node.create_client(GetState, f"/{NODE}/get_state")
        assert self.change.wait_for_service(timeout_sec=60) and self.get.wait_for_service(timeout_sec=60)

    def state(self) -> str:
        """Asked again while no answer comes (ros_harness.Collector.call: a just-matched client's first
        answer can be dropped by the middleware)."""
        from lifecycle_msgs.srv import GetState
        try:
            return self.col.call(lambda: self.get.call_async(GetState.Request()), timeout=120).current_state.label
        except AssertionError as e:  # the node's own words say why it did not answer
            raise AssertionError(f"{e}; the node's log ends:\n{self.log.read_text()[-3000:]}") from None

    def transition(self, label: str, timeout: float = 120) -> bool:
        """Whether the transition succeeded. Sent once: the request itself is delivered (wait_for_service
        saw the server's request reader) but its answer can be dropped as state()'s can, and sending a
        transition again is not harmless. Without an answer the node's state (a primary state, asked
        each 10 s) says it: the transition's end state, or still the start state (it failed)."""
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState
        ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
               "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP,
               "shutdown": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN}
        ends = {"configure": "inactive", "activate": "active", "deactivate": "inactive", "cleanup": "unconfigured",
                "shutdown": "finalized"}
        start = self.state()
        fut = self.change.call_async(ChangeState.Request(transition=Transition(id=ids[label])))
        end = time.monotonic() + timeout
        while not self.col.wait_for(fut.done, timeout=10, period=0.05):
            now = self.state()
            if now != start and now in PRIMARY or time.monotonic() > end:
                return now == ends[label]
        return fut.result().success


def _frame(seq: int):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from fornet_ros.ros.conversions import rgb_to_image
    from fornet_ros.tools.synthetic import make_scene
    rgb, _ = make_scene(120, 160, seed=seq % 3)
    return rgb_to_image(Image(), rgb, Header(stamp=Time(sec=100 + seq), frame_id="cam0_optical"), "rgb8")


def _camera_info():
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(height=120, width=160, distortion_model="plumb_bob")
    info.k = [80.0, 0.0, 80.0, 0.0, 80.0, 60.0, 0.0, 0.0, 1.0]
    return info


OUTPUTS = ("cam0/semantic/labels", "cam0/semantic/color", "cam0/semantic/camera_info", "semantic/label_info",
           "/diagnostics", "semantic_costmap/combined", "semantic_points")


def _counts(col):
    return {t: len(col.get(t)) for t in OUTPUTS}


def _feed(col, seconds: float):
    """Publish camera frames for ``seconds``."""
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        col.info_pubs["cam0"].publish(_camera_info())
        col.pubs["cam0"].publish(_frame(i))
        i += 1
        time.sleep(0.1)


def _node_topics(col) -> set:
    return {t for t, _ in col.node.get_publisher_names_and_types_by_node(NODE, "/")
            if "semantic" in t or t == "/diagnostics"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A model large enough that loading and freeing it shows in the RSS (DDRNet-23-slim, 23 MB)."""
    import torch
    import yaml
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.classes import CITYSCAPES_CLASSES
    from fornet_ros.model import create_model
    tmp = tmp_path_factory.mktemp("lifecycle")
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp / "m.pt", create_model("ddrnet23_slim"), ModelMeta.default(19, (128, 160)))
    layers = tmp / "layers.yaml"  # every class on the ground, so an untrained model's grids fill
    layers.write_text(yaml.safe_dump({"ground_classes": list(CITYSCAPES_CLASSES),
                                      "layers": [{"name": "road", "classes": ["road"], "cost": 10}]}))
    return ckpt, layers


def test_a_lifecycle_manager_drives_the_node(checkpoint, tmp_path):
    ckpt, layers = checkpoint
    env = ros_env(DOMAIN)
    log = tmp_path / "node.log"
    proc = start_node(env, "autostart:=false", f"checkpoint:={ckpt}", f"costmap_config:={layers}",
                      "cameras:=[cam0]", "diagnostics_period_s:=0.3", "grid_width:=60", "grid_height:=60",
                      "grid_origin:=[0.0, -3.0]", "use_tf:=false", log_path=log)
    col = Collector(("cam0",), DOMAIN)
    try:
        m = Manager(col, log)
        text = lambda: log.read_text()[-3000:]  # noqa: E731
        # unconfigured: no model, no topics, nothing published
        assert m.state() == "unconfigured"
        rss_bare = _rss_mb(proc.pid)
        _feed(col, 1.5)
        assert not any(_counts(col).values()) and not _node_topics(col), (_counts(col), text())

        # configure: the model is loaded and warmed up; still nothing published
        assert m.transition("configure"), text()
        assert m.state() == "inactive"
        rss_loaded = _rss_mb(proc.pid)
        _feed(col, 1.5)
        assert not any(_counts(col).values()) and not _node_topics(col), (_counts(col), text())

        # activate: everything is published
        assert m.transition("activate") and m.state() == "active"
        assert col.wait_for(lambda: all(_counts(col).values()), timeout=60,
                            publish=lambda: _feed(col, 0.3)), (_counts(col), text())
        assert {"/cam0/semantic/labels", "/semantic/label_info", "/diagnostics"} <= _node_topics(col)

        # deactivate: processing stops, the publishers go; the model stays
        assert m.transition("deactivate") and m.state() == "inactive"
        time.sleep(1.0)  # anything already in flight on the wire
        before = _counts(col)
        _feed(col, 2.5)
        assert _counts(col) == before, (before, _counts(col))
        assert not _node_topics(col)

        # activate again: it resumes
        n = len(col.get("cam0/semantic/labels"))
        assert m.transition("activate")
        assert col.wait_for(lambda: len(col.get("cam0/semantic/labels")) > n + 2, timeout=60,
                            publish=lambda: _feed(col, 0.3)), text()

        # deactivate + cleanup: the model is freed (the RSS drops); configure loads it again
        assert m.transition("deactivate") and m.transition("cleanup") and m.state() == "unconfigured"
        # (the first configure also imported torch, which stays: compare with the weights' size)
        weights_mb = ckpt.stat().st_size / 2**20
        time.sleep(0.5)
        rss_freed = _rss_mb(proc.pid)
        assert rss_loaded - rss_freed > 0.6 * weights_mb, (weights_mb, rss_bare, rss_loaded, rss_freed)
        assert m.transition("configure") and m.state() == "inactive"
        rss_reloaded = _rss_mb(proc.pid)
        assert rss_reloaded - rss_freed > 0.6 * weights_mb, (weights_mb, rss_freed, rss_reloaded)
        assert m.transition("cleanup")
        time.sleep(0.5)
        assert rss_reloaded - _rss_mb(proc.pid) > 0.6 * weights_mb

        # shutdown: finalized, and the process ends cleanly
        assert m.transition("shutdown")
        assert proc.wait(timeout=20) == 0, text()
        out = log.read_text()
        assert "Traceback" not in out and "context is invalid" not in out, out[-3000:]
    finally:
        col.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_failing_transition_returns_failure_with_a_one_line_reason(tmp_path):
    env = ros_env(DOMAIN + 1)
    log = tmp_path / "node.log"
    proc = start_node(env, "autostart:=false", f"checkpoint:={tmp_path}/nope.pt", "cameras:=[cam0]", log_path=log)
    col = Collector(("cam0",), DOMAIN + 1)
    try:
        m = Manager(col, log)
        assert not m.transition("configure")
        assert m.state() == "unconfigured"
        assert not m.transition("activate")  # not a transition of the unconfigured state
        assert proc.poll() is None
        errors = [line for line in log.read_text().splitlines() if "configure failed" in line]
        assert len(errors) == 1 and "parameter 'checkpoint'" in errors[0] and "nope.pt" in errors[0], errors
        assert "Traceback" not in log.read_text()
        assert m.transition("shutdown") and proc.wait(timeout=20) == 0
    finally:
        col.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_transitions_in_process(checkpoint):
    """The same state machine without DDS: a run-time parameter set while inactive is taken over on
    activate, and shutdown from active stops the worker and frees the model."""
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn as R
    from rclpy.parameter import Parameter
    from fornet_ros.ros.node import SegmentationNode
    ckpt, _ = checkpoint
    ros_env(DOMAIN + 2)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN + 2)
    node = SegmentationNode(context=ctx, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("checkpoint", value=str(ckpt)),
        Parameter("cameras", value=["cam0"]), Parameter("costmap_enabled", value=False)])
    try:
        assert node.state == "unconfigured" and node.segmenter is None and node.worker is None
        assert node.trigger_configure() == R.SUCCESS and node.state == "inactive"
        assert node.segmenter is not None and node.worker is None
        assert node.set_parameters([Parameter("topk_ratio", value=0.5)])[0].successful  # ddrnet: any K passes
        assert node.trigger_activate() == R.SUCCESS and node.state == "active"
        assert node.worker.is_alive() and node.pipeline.params.topk_ratio == 0.5
        worker = node.worker
        assert node.trigger_shutdown() == R.SUCCESS and node.state == "finalized" and node.finalized
        assert not worker.is_alive() and node.segmenter is None and node.pipeline is None
        assert not [p for p in node.publishers if "semantic" in p.topic_name]
    finally:
        node.stop()
        node.destroy_node()
        ctx.try_shutdown()
