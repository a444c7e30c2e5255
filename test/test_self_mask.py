"""The self mask (fornet_ros/mapping/self_mask.py): the robot's own pixels never reach the grids or
the points; and the node's per-camera parameters that set it, through real rclpy."""

import os

import cv2
import numpy as np
import pytest

from fornet_ros.classes import CITYSCAPES_CLASSES, IGNORE_INDEX
from fornet_ros.mapping import CameraModel, GridFuser, GridSpec, LayerConfig, Pose, build_lookup
from fornet_ros.mapping.self_mask import SelfMask, SelfMaskError

ROAD, CAR = 0, 13
W, H, F = 200, 150, 100.0
CAM = CameraModel(W, H, (F, 0, 100.0, 0, F, 75.0, 0, 0, 1))
GRID = GridSpec(resolution=0.1, width=300, height=200, origin=(0.0, -10.0))
CFG = LayerConfig.from_dict({"ground_classes": ["road"], "obstacle_classes": ["car"],
                             "layers": [{"name": "cars", "classes": ["car"], "cost": 100}]}, CITYSCAPES_CLASSES)


def hood_frame():
    """Road everywhere below the horizon, and the camera's own car hood (labelled car) in the
    bottom 20 rows, as on every Cityscapes frame."""
    labels = np.full((H, W), ROAD, np.uint8)
    labels[:75] = 10  # sky above the horizon
    labels[-20:] = CAR
    return labels


def lethal_cells(labels):
    f = GridFuser(GRID, CFG)
    f.add(labels, build_lookup(CAM, Pose(z=1.5), GRID, labels.shape, max_range=30.0))
    return int((f.grids()["cars"] == 100).sum()), len(f.obstacle_points()[0])


def test_the_hood_is_an_obstacle_without_a_mask_and_none_with_one():
    labels = hood_frame()
    cells, points = lethal_cells(labels)
    assert cells > 0 and points > 0  # the bug: the hood is lethal right in front of the robot
    masked = SelfMask(rows=20).apply(labels)
    assert lethal_cells(masked) == (0, 0)
    assert (masked[-20:] == IGNORE_INDEX).all() and (masked[:-20] == labels[:-20]).all()
    assert (labels[-20:] == CAR).all()  # the input is not changed


def test_rows_image_and_their_union(tmp_path):
    img = np.zeros((H, W), np.uint8)
    img[:10, :5] = 255  # a mount in the top-left corner
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), img)
    only_image = SelfMask(image=str(path)).pixels((H, W))
    assert only_image.sum() == 50 and only_image[:10, :5].all()
    both = SelfMask(rows=3, image=str(path)).pixels((H, W, 3))
    assert both.sum() == 50 + 3 * W and both[-3:].all()
    # another frame size: the image is resized nearest-neighbour, the rows stay rows
    big = SelfMask(rows=3, image=str(path)).pixels((2 * H, 2 * W))
    assert big[:20, :10].all() and big[-3:].all() and big.sum() == 200 + 3 * 2 * W
    assert SelfMask(rows=10 * H).pixels((H, W)).all()  # more rows than the image: all of it


def test_outline_for_drawing():
    (band,) = SelfMask(rows=20).outline((H, W))
    assert band.dtype == np.int32 and band.shape[1] == 2
    assert {tuple(p) for p in band} == {(0, H - 20), (W - 1, H - 20), (W - 1, H - 1), (0, H - 1)}
    drawn = cv2.fillPoly(np.zeros((H, W), np.uint8), [band], 1).astype(bool)
    assert (drawn == SelfMask(rows=20).pixels((H, W))).all()
    assert SelfMask().outline((H, W)) == []


def test_an_empty_mask_changes_nothing():
    labels = hood_frame()
    m = SelfMask()
    assert m.empty and m.pixels(labels.shape) is None and m.apply(labels) is labels
    assert m.describe() == "nothing"
    assert SelfMask(rows=180).describe() == "the bottom 180 rows"


@pytest.mark.parametrize("kw,words", [(dict(rows=-1), ["rows", ">= 0"]), (dict(rows=1.5), ["rows"]),
                                      (dict(image="/nonexistent/hood.png"), ["does not exist"])])
def test_bad_masks_are_one_line_errors(kw, words):
    with pytest.raises(SelfMaskError) as e:
        SelfMask(**kw, name="parameter 'self_mask_rows.front'")
    msg = str(e.value)
    assert "\n" not in msg and "self_mask_rows.front" in msg and all(w in msg for w in words), msg


def test_an_unreadable_mask_image_is_an_error(tmp_path):
    bad = tmp_path / "hood.png"
    bad.write_text("not an image")
    with pytest.raises(SelfMaskError, match="not an image"):
        SelfMask(image=str(bad))


# -- the node's parameters (real rclpy, in process) -------------------------------------------------
@pytest.fixture(scope="module")
def node(tmp_path_factory):
    import rclpy
    import torch
    from rclpy.parameter import Parameter
    from fornet_ros.inference.checkpoint import ModelMeta, save_checkpoint
    from fornet_ros.model import create_model
    from fornet_ros.ros.node import SegmentationNode
    from ros_harness import ros_env
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("mask")
    ckpt = save_checkpoint(tmp / "m.pt", create_model("fornet_s"), ModelMeta.default(19, (64, 128)))
    domain = 200 + os.getpid() % 30
    ros_env(domain)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    n = SegmentationNode(context=ctx, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("checkpoint", value=str(ckpt)),
        Parameter("cameras", value=["front", "rear"]), Parameter("self_mask_rows.front", value=20)])
    yield n
    n.stop()
    n.destroy_node()
    ctx.try_shutdown()


def test_node_masks_what_reaches_the_costmap_and_the_points(node):
    from rclpy.lifecycle import TransitionCallbackReturn as R
    from std_msgs.msg import Header
    from fornet_ros.inference import Segmentation
    assert node.trigger_configure() == R.SUCCESS and node.trigger_activate() == R.SUCCESS
    assert node.self_masks["front"].rows == 20 and node.self_masks["rear"].empty
    seen = {}

    class Recorder:  # what the node hands to the costmap and the points
        def update(self, frames, now):
            seen["costmap"] = {f.cam: f.labels for f in frames}
            return {}

        def process(self, cam, header, result, info):
            seen.setdefault("points", {})[cam] = result.labels

    node.grid, node.points3d = Recorder(), Recorder()
    labels = hood_frame()
    r = Segmentation(labels, confidence=np.ones((H, W), np.float32))
    for cam in ("front", "rear"):
        node.points(cam, Header(), r)
    node.costmap([(cam, Header(), r, 0.0, None) for cam in ("front", "rear")])
    for where in ("costmap", "points"):
        front, rear = seen[where]["front"], seen[where]["rear"]
        assert (front[-20:] == IGNORE_INDEX).all() and (front[:-20] == labels[:-20]).all(), where
        assert rear is labels, where  # no mask: untouched
    assert (r.labels[-20:] == CAR).all()  # the published label image keeps the model's labels
    node.grid = node.points3d = None
    assert node.trigger_deactivate() == R.SUCCESS


def test_node_rejects_a_missing_mask_image_at_configure(tmp_path):
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn as R
    from rclpy.parameter import Parameter
    from fornet_ros.ros.node import SegmentationNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    n = SegmentationNode(context=ctx, parameter_overrides=[
        Parameter("autostart", value=False), Parameter("cameras", value=["front"]),
        Parameter("self_mask_image.front", value=str(tmp_path / "hood.png"))])
    try:
        assert n.trigger_configure() == R.FAILURE
        assert "self_mask_image.front" in n.transition_error and "does not exist" in n.transition_error
    finally:
        n.destroy_node()
        ctx.try_shutdown()
