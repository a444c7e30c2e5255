"""The node's parameter bridge and wall-clock diagnostics, in process (rclpy, no subprocess)."""

import math
import os
import time

import pytest

from ros_harness import ros_env

DOMAIN = 100 + os.getpid() % 30


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    """(node, context): the node with use_sim_time and nothing publishing /clock."""
    import rclpy
    import torch
    from rclpy.parameter import Parameter
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    from fornet_ros.ros.node import SegmentationNode
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt", create_model("fornet_s", topk_ratio=0.125),
                           ModelMeta.default(19, (64, 128)))
    ros_env(DOMAIN)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=DOMAIN)
    node = SegmentationNode(context=ctx, parameter_overrides=[
        Parameter("checkpoint", value=str(ckpt)), Parameter("cameras", value=["cam0"]),
        Parameter("use_sim_time", value=True), Parameter("diagnostics_period_s", value=0.2),
        Parameter("topk_ratio", value=0.25)])
    yield node, ctx
    node.stop()
    node.destroy_node()
    ctx.try_shutdown()


def _set(node, name, value):
    from rclpy.parameter import Parameter
    return node.set_parameters([Parameter(name, value=value)])[0]


def test_descriptors_follow_the_table(ros):
    from fornet_ros.node.params import SPECS
    node, _ = ros
    topk, device, depth = node.describe_parameters(["topk_ratio", "device", "input_depth"])
    assert topk.description == SPECS["topk_ratio"].description and not topk.read_only
    assert (topk.floating_point_range[0].from_value, topk.floating_point_range[0].to_value) == (-1.0, 1.0)
    assert device.read_only and device.additional_constraints == "auto, cpu, cuda or cuda:N"
    assert (depth.integer_range[0].from_value, depth.integer_range[0].to_value) == (1, 100)


def test_negative_topk_ratio_selects_the_checkpoints_k(ros):
    node, _ = ros
    assert node.segmenter.topk_ratio == 0.25
    assert _set(node, "topk_ratio", 0.5).successful and node.segmenter.topk_ratio == 0.5
    assert _set(node, "topk_ratio", -1.0).successful
    assert node.segmenter.topk_ratio == 0.125 and node.params.topk_ratio == -1.0


def test_floats_accept_integers(ros):
    node, _ = ros
    assert _set(node, "topk_ratio", 1).successful
    assert node.params.topk_ratio == 1.0 and node.segmenter.topk_ratio == 1.0
    assert _set(node, "latency_budget_ms", 250).successful and node.params.latency_budget_ms == 250.0
    r = _set(node, "topk_ratio", "0.5")
    assert not r.successful and "topk_ratio must be a number" in r.reason
    assert _set(node, "topk_ratio", 0.25).successful


def test_a_k_parameter_set_to_its_own_value_leaves_the_controller_running(ros):
    """A params file applied again or a service call repeated after a lost answer sets K parameters
    to the values they have: the controller keeps its state; a real change starts it anew."""
    node, _ = ros
    assert _set(node, "latency_target_ms", 500.0).successful
    ctrl = node.pipeline.k_ctrl
    assert ctrl is not None
    assert _set(node, "latency_target_ms", 500).successful and _set(node, "topk_ratio", 0.25).successful
    assert node.pipeline.k_ctrl is ctrl
    assert _set(node, "latency_target_ms", 400.0).successful
    assert node.pipeline.k_ctrl is not ctrl and node.pipeline.k_ctrl.target_ms == 400.0
    assert _set(node, "latency_target_ms", 0.0).successful and node.pipeline.k_ctrl is None
    assert node.segmenter.topk_ratio == 0.25


@pytest.mark.parametrize("name,value", [("stale_timeout_s", math.nan), ("latency_budget_ms", math.nan),
                                        ("max_input_age_ms", math.inf), ("stale_timeout_s", -1.0),
                                        ("topk_ratio", 2)])
def test_non_finite_and_out_of_range_values_are_rejected(ros, name, value):
    node, _ = ros
    before = node.params
    r = _set(node, name, value)
    assert not r.successful and name in r.reason
    assert node.params == before


@pytest.mark.parametrize("name,value", [("device", "cpu"), ("cameras", ["x"]), ("input_depth", 5),
                                        ("camera_pose.cam0", [0.0, 0.0, 2.0, 0.0, 0.0, 0.0])])
def test_static_parameters_are_read_only(ros, name, value):
    node, _ = ros
    r = _set(node, name, value)
    assert not r.successful and r.reason == f"Trying to set a read-only parameter: {name}."


def test_use_sim_time_can_change(ros):
    node, _ = ros
    assert _set(node, "use_sim_time", False).successful
    assert _set(node, "use_sim_time", True).successful
    assert node.get_parameter("use_sim_time").value is True


def test_diagnostics_run_on_the_wall_clock_with_sim_time_and_no_clock(ros):
    """With use_sim_time and no /clock the ROS clock stands still; /diagnostics (and its stale
    ERROR) must keep coming."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from rclpy.executors import SingleThreadedExecutor
    node, ctx = ros
    assert node.get_clock().now().nanoseconds == 0  # sim time, nothing on /clock
    listener = rclpy.create_node("diag_listener", context=ctx)
    got = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.add_node(listener)
    end = time.monotonic() + 15
    while len(got) < 3 and time.monotonic() < end:
        ex.spin_once(timeout_sec=0.05)
    ex.remove_node(node)
    listener.destroy_node()
    assert len(got) >= 3
    st = got[-1].status[0]
    assert st.name == "fornet_ros: cam0" and st.level == DiagnosticStatus.ERROR and st.message == "no images"


def test_diagnostics_under_sim_time_measure_rates_and_say_the_clocks_disagree(ros):
    """Frames stamped on the wall clock reach a node on sim time with no /clock (issue #21): rates
    are throughput on a steady clock (not 0), the array is stamped (not 0), and instead of a
    meaningless input age the status message says the node's clock reads 0."""
    import numpy as np
    import rclpy
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
    from fornet_ros.ros.conversions import rgb_to_image
    node, ctx = ros
    peer = rclpy.create_node("diag_peer", context=ctx)
    got = []
    peer.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    pub = peer.create_publisher(Image, "cam0/image_raw", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    ex = MultiThreadedExecutor(context=ctx)
    ex.add_node(node)
    ex.add_node(peer)
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    end, last_pub, seen = time.monotonic() + 30, 0.0, None
    while time.monotonic() < end and seen is None:
        if time.monotonic() - last_pub > 0.05:
            ns = time.time_ns()
            pub.publish(rgb_to_image(Image(), rgb, Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                                                             frame_id="cam0"), "rgb8"))
            last_pub = time.monotonic()
        ex.spin_once(timeout_sec=0.02)
        for arr in got:
            v = {kv.key: kv.value for kv in arr.status[0].values}
            if float(v["processed_hz"]) > 0 and float(v["input_hz"]) > 0:
                seen = (arr, arr.status[0], v)
    ex.remove_node(node)
    peer.destroy_node()
    assert seen is not None, [s.status[0].message for s in got][-3:]
    arr, st, v = seen
    assert node.get_clock().now().nanoseconds == 0  # still no /clock
    assert arr.header.stamp.sec > 1_600_000_000  # stamped on the wall clock, not 0
    assert "clock reads 0" in st.message and st.message.count("input age not measured") == 1, st.message
    assert v["input_age_ms_p50"] == "nan" and int(v["processed"]) >= 1
