"""The node over real DDS with a depth camera and a LiDAR: the pixel-aligned labelled cloud carries
the mask's header and labels; LiDAR points come back labelled in the LiDAR's frame; a depth frame
outside the sync slop is counted as unmatched and never blocks the colour path."""

import os
import signal

import numpy as np
import pytest

from ros_harness import Collector, ros_env, start_node

DOMAIN = 90 + os.getpid() % 50


@pytest.fixture(scope="module")
def depth_graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("points")
    import torch
    from conftest import spread_selector
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp / "m.pt", spread_selector(create_model("fornet_s")), ModelMeta.default(19, (64, 96)))
    env = ros_env(DOMAIN)
    proc = start_node(env, f"checkpoint:={ckpt}", "cameras:=[cam0]", "costmap_enabled:=false", "depth_enabled:=true",
                      "lidar_topic:=lidar/points", "lidar_pose:=[0.0, 0.0, 1.5, 0.0, 0.0, 0.0]",
                      "camera_pose.cam0:=[0.0, 0.0, 1.5, 0.0, 0.0, 0.0]", "sync_slop_ms:=20.0",
                      "diagnostics_period_s:=0.5", log_path=tmp / "node.log")
    col = Collector(("cam0",), DOMAIN, outputs=("labels",))  # nobody subscribes to the confidence image
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    col.depth_pub = col.node.create_publisher(Image, "cam0/depth/image_raw", reliable)
    col.lidar_pub = col.node.create_publisher(PointCloud2, "lidar/points", reliable)
    col._sub(PointCloud2, "cam0/semantic/points", reliable)
    col._sub(PointCloud2, "semantic/lidar_points", reliable)
    yield proc, col, tmp / "node.log"
    col.close()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)


def _messages(seq: int, depth_offset_ns: int = 0, h=60, w=80):
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from fornet_ros.mapping.points import CLOUD_DTYPE
    from fornet_ros.ros.conversions import fill_image, make_labelled_cloud, rgb_to_image
    from fornet_ros.tools.synthetic import make_scene
    rgb, _ = make_scene(h, w, seed=seq)
    hdr = Header(stamp=Time(sec=100 + seq), frame_id="cam0_optical")
    info = CameraInfo(header=hdr, height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5,
                      k=[50.0, 0, (w - 1) / 2, 0, 50.0, (h - 1) / 2, 0, 0, 1])
    depth = np.full((h, w), 5.0, np.float32)
    depth[0, 0] = 0.0  # one invalid pixel
    dns = 100 * 10**9 + seq * 10**9 + depth_offset_ns
    dh = Header(stamp=Time(sec=dns // 10**9, nanosec=dns % 10**9), frame_id="cam0_optical")
    dmsg = fill_image(Image(), depth, dh, "32FC1")
    pts = np.zeros(3, CLOUD_DTYPE)  # LiDAR frame: x forward; 4 m ahead, 4 m behind, far left
    pts["x"], pts["y"], pts["z"] = [4.0, -4.0, 0.5], [0.0, 0.0, 8.0], [0.0, 0.0, 0.0]
    lidar = make_labelled_cloud(Header(stamp=hdr.stamp, frame_id="lidar"), pts)
    return rgb_to_image(Image(), rgb, hdr, "rgb8"), info, dmsg, lidar


def test_depth_and_lidar_give_labelled_clouds(depth_graph):
    proc, col, log = depth_graph
    from fornet_ros.node.images import to_mono8
    from fornet_ros.mapping.points import CLOUD_DTYPE
    img, info, dmsg, lidar = _messages(1)

    def publish():
        col.depth_pub.publish(dmsg)
        col.lidar_pub.publish(lidar)
        col.info_pubs["cam0"].publish(info)
        col.pubs["cam0"].publish(img)
    ok = col.wait_for(lambda: col.get("cam0/semantic/points") and col.get("semantic/lidar_points")
                      and col.get("cam0/semantic/labels"), timeout=60, publish=publish, period=0.5)
    assert ok, log.read_text()[-3000:]
    cloud = col.get("cam0/semantic/points")[-1]
    assert (cloud.height, cloud.width, cloud.point_step) == (60, 80, 20) and cloud.header == img.header
    rec = np.frombuffer(bytes(cloud.data), CLOUD_DTYPE).reshape(60, 80)
    labels = next(to_mono8(m) for m in reversed(col.get("cam0/semantic/labels")) if m.header == img.header)
    np.testing.assert_array_equal(rec["label"], labels)  # pixel-aligned with the mask
    assert np.isnan(rec["z"][0, 0]) and np.allclose(rec["z"][1:, 1:], 5.0)
    # the clouds alone are subscribed: their confidence is computed (issue #21), not NaN or 1.0
    conf = rec["confidence"]
    assert np.isfinite(conf).all() and (conf > 0).all() and (conf <= 1).all() and conf.min() < 0.99, conf
    assert len(np.unique(conf)) > 10
    lid = col.get("semantic/lidar_points")[-1]
    assert lid.header.frame_id == "lidar" and lid.width == 1  # behind and outside the image: dropped
    lrec = np.frombuffer(bytes(lid.data), CLOUD_DTYPE)
    # LiDAR and camera share the pose: the point 4 m ahead projects to the principal point (39.5, 29.5)
    assert lrec["confidence"][0] == pytest.approx(float(conf[30, 40]), abs=0.05)  # the same map, sampled
    assert lrec["x"][0] == 4.0 and lrec["label"][0] == labels[30, 40] and 0 < lrec["confidence"][0] < 1


def test_depth_outside_the_slop_is_counted_not_waited_for(depth_graph):
    proc, col, log = depth_graph
    img, info, dmsg, _ = _messages(7, depth_offset_ns=80_000_000)  # 80 ms off, slop 20 ms

    def values():
        for arr in reversed(col.get("/diagnostics")):
            for st in arr.status:
                if st.name == "fornet_ros: cam0":
                    return {kv.key: kv.value for kv in st.values}
        return {}

    before = len([m for m in col.get("cam0/semantic/labels") if m.header == img.header])
    ok = col.wait_for(lambda: int(values().get("depth_unmatched", 0)) >= 1 and
                      len([m for m in col.get("cam0/semantic/labels") if m.header == img.header]) > before,
                      timeout=30, publish=lambda: (col.depth_pub.publish(dmsg), col.info_pubs["cam0"].publish(info),
                                                   col.pubs["cam0"].publish(img)), period=0.5)
    assert ok, values()
    assert int(values().get("depth_invalid_px", 0)) >= 1 and int(values().get("depth_matched", 0)) >= 1
