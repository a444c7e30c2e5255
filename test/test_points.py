"""Labelled 3D points on an analytic scene: a camera 1.5 m above flat ground, looking at a box
(a "car") whose front face is 6 m ahead. Depth and a LiDAR sweep are rendered exactly."""

import math

import numpy as np
import pytest

from fornet_ros.mapping import CameraModel, Pose
from fornet_ros.mapping.points import (CLOUD_DTYPE, PointsError, StampMatcher, cloud_array, depth_points, lidar_labels,
                               lidar_to_optical, obstacle_points, project, to_base)

CAM = CameraModel(320, 240, (200.0, 0, 159.5, 0, 200.0, 119.5, 0, 0, 1))
POSE = Pose(0.0, 0.0, 1.5, 0.0, 0.0, 0.0)
BOX_X, BOX_Y, BOX_Z = 6.0, 1.0, 1.5  # front face x = 6 m, |y| <= 1 m, 0 <= z <= 1.5 m
ROAD, CAR, SKY = 0, 13, 10


def hit(origins, dirs, bottom=0.0):
    """Range along ``dirs`` to the scene (box front face, its lower edge ``bottom`` m above the
    ground, or the ground), inf where nothing is hit; and the class hit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s_box = (BOX_X - origins[..., 0]) / dirs[..., 0]
        p = origins + s_box[..., None] * dirs
        box = (s_box > 0) & (np.abs(p[..., 1]) <= BOX_Y) & (p[..., 2] >= bottom) & (p[..., 2] <= BOX_Z)
        s_gnd = -origins[..., 2] / dirs[..., 2]
        gnd = (s_gnd > 0) & (dirs[..., 2] < 0)
    s = np.where(box, s_box, np.where(gnd, s_gnd, np.inf))
    s = np.where(box & gnd, np.minimum(s_box, s_gnd), s)
    cls = np.where(np.isinf(s), SKY, np.where(box & (s == s_box), CAR, ROAD))
    return s, cls


def render(bottom=0.0, cam=CAM, pose=POSE):
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    rays = cam.normalized_rays(u.ravel(), v.ravel()).reshape(cam.height, cam.width, 3)
    R, t = pose.optical_in_base()
    s, cls = hit(np.broadcast_to(t, rays.shape), rays @ R.T, bottom)  # rays have z_opt = 1: range s = depth
    depth = np.where(np.isinf(s) | (s > 60), 0.0, s)  # like a sensor: 0 = no return
    return depth, cls.astype(np.uint8)


def test_depth_points_land_where_the_scene_is():
    depth, cls = render()
    pts, stats = depth_points((depth * 1000).round().astype(np.uint16), CAM, "16UC1", max_range=60)
    base = to_base(pts, POSE)
    car, road = cls == CAR, (cls == ROAD) & (depth > 0) & (depth < 30)
    assert car.sum() > 1000 and road.sum() > 1000
    assert np.abs(base[car][:, 0] - BOX_X).max() < 0.1  # within one 0.1 m grid cell
    assert np.abs(base[road][:, 2]).max() < 0.1
    assert stats.zero == int((depth == 0).sum()) and stats.valid == int((depth > 0.1).sum())


def test_depth_removes_the_smear_of_flat_ground_projection():
    depth, cls = render()
    pts, _ = depth_points(depth.astype(np.float32), CAM, "32FC1")
    car = (cls == CAR) & (np.arange(CAM.height)[:, None] > 120)  # car pixels below the horizon
    R, t = POSE.optical_in_base()
    v, u = np.nonzero(car)
    d = CAM.normalized_rays(u, v) @ R.T
    x_flat = t[2] / -d[:, 2] * d[:, 0]  # where flat-ground projection puts them
    x_depth = to_base(pts[car], POSE)[:, 0]
    assert np.ptp(x_flat) > 5.0 and x_flat.max() > BOX_X + 5  # smeared along the ray
    assert np.ptp(x_depth) < 0.05  # with depth: all on the face


def _car_cells_x(grid, costs):
    """x (m) of the cells the 'car' layer marked."""
    iy, ix = np.nonzero(costs > 0)
    return grid.origin[0] + (ix + 0.5) * grid.resolution


@pytest.mark.parametrize("bottom", [0.0, 0.5])
def test_depth_obstacles_replace_flat_ground_contacts_in_the_grid(bottom):
    """A box standing on the ground (bottom 0) and one whose lower edge is 0.5 m up (a trailer, a
    barrier: its lowest visible pixel is not on the ground). Flat-ground contacts put the raised one
    3 m behind its face (the ray through its lower edge meets the ground at x = 6 * 1.5 / 1.0 = 9 m);
    depth puts every car cell within one cell of the face, in both cases."""
    from fornet_ros.mapping import GridFuser, GridSpec, LayerConfig, build_lookup
    depth, cls = render(bottom)
    names = [str(i) for i in range(19)]
    cfg = LayerConfig.from_dict({"ground_classes": [str(ROAD)], "obstacle_classes": [str(CAR)],
                                 "layers": [{"name": "car", "classes": [str(CAR)], "cost": 100}]}, names)
    grid = GridSpec(0.1, 200, 100, (0.0, -5.0))
    lookup = build_lookup(CAM, POSE, grid, cls.shape)
    flat = GridFuser(grid, cfg)
    flat.add(cls, lookup)
    x_flat = _car_cells_x(grid, flat.grids()["car"])
    pts, _ = depth_points(depth.astype(np.float32), CAM, "32FC1")
    obstacles = obstacle_points(pts, cls, POSE, cfg.lut("obstacle"), (0.05, 2.0))
    xy, lab, measured = obstacles
    assert set(lab.tolist()) == {CAR} and len(lab) > 1000 and measured.sum() == int((cls == CAR).any(0).sum())
    fused = GridFuser(grid, cfg)
    fused.add(cls, lookup, obstacles)
    x_depth = _car_cells_x(grid, fused.grids()["car"])
    assert len(x_depth) >= 15 and np.abs(x_depth - BOX_X).max() <= grid.resolution  # within one cell of the face
    if bottom == 0.0:
        assert np.abs(x_flat - BOX_X).max() <= grid.resolution  # flat contacts are right on the ground
    else:
        assert x_flat.min() > BOX_X + 2.5 and x_flat.max() < 9.5  # ~3 m off along the ray (pixel rows: 9.0-9.3)
    pts_xy, pts_lab = fused.obstacle_points()
    assert np.abs(pts_xy[:, 0] - BOX_X).max() < 0.05 and (pts_lab == CAR).all()
    assert len(pts_xy) == len(x_depth)  # one obstacle point per marked cell, not one per pixel


def test_columns_without_depth_keep_their_flat_ground_contacts():
    """Depth holes (here: no depth in the left half of the image) must not erase an obstacle:
    those columns keep their contacts (the raised box: ~3 m behind its face), the measured ones
    are placed by depth."""
    from fornet_ros.mapping import GridFuser, GridSpec, LayerConfig, build_lookup
    depth, cls = render(0.5)
    depth[:, : CAM.width // 2] = 0.0  # no return
    names = [str(i) for i in range(19)]
    cfg = LayerConfig.from_dict({"ground_classes": [str(ROAD)], "obstacle_classes": [str(CAR)],
                                 "layers": [{"name": "car", "classes": [str(CAR)], "cost": 100}]}, names)
    grid = GridSpec(0.1, 200, 100, (0.0, -5.0))
    pts, _ = depth_points(depth.astype(np.float32), CAM, "32FC1")
    fused = GridFuser(grid, cfg)
    fused.add(cls, build_lookup(CAM, POSE, grid, cls.shape), obstacle_points(pts, cls, POSE, cfg.lut("obstacle"),
                                                                            (0.05, 2.0)))
    iy, ix = np.nonzero(fused.grids()["car"] > 0)
    x, y = (ix + 0.5) * 0.1, -5.0 + (iy + 0.5) * 0.1
    left, right = y > 0.05, y < -0.05  # image left = +y
    assert left.sum() >= 5 and (x[left] > BOX_X + 2.5).all()  # contacts where depth is missing
    assert right.sum() >= 5 and (np.abs(x[right] - BOX_X) <= 0.1).all()  # depth where it exists


def test_obstacle_points_keep_only_obstacle_classes_in_the_height_band():
    depth, cls = render()
    pts, _ = depth_points(depth.astype(np.float32), CAM, "32FC1")
    lut = np.zeros(256, bool)
    lut[CAR] = True
    _, lab_all, _ = obstacle_points(pts, cls, POSE, lut, (-1.0, 10.0))
    xy, lab, _ = obstacle_points(pts, cls, POSE, lut, (1.0, 2.0))  # the upper third of the 1.5 m box
    z = to_base(pts, POSE)[..., 2]
    assert len(lab_all) == int(((cls == CAR) & np.isfinite(z)).sum())
    assert len(lab) == int(((cls == CAR) & (z >= 1.0) & (z <= 2.0)).sum()) and 0 < len(lab) < len(lab_all)


def test_invalid_depth_is_dropped_and_counted():
    depth = np.full((CAM.height, CAM.width), 5.0, np.float32)
    depth[0, :10] = 0
    depth[1, :7] = np.nan
    depth[2, :5] = np.inf
    depth[3, :3] = 80.0
    pts, s = depth_points(depth, CAM, "32FC1", max_range=50)
    assert (s.zero, s.not_finite, s.out_of_range) == (10, 12, 3)
    assert s.valid == depth.size - 25 and np.isnan(pts[:4, :10]).any(-1).sum() == 25
    with pytest.raises(PointsError, match="encoding"):
        depth_points(depth, CAM, "8UC1")
    with pytest.raises(PointsError, match="does not match"):
        depth_points(depth[:10], CAM, "32FC1")


def lidar_sweep(lidar_pose):
    az = np.deg2rad(np.arange(-180, 180, 0.5))
    el = np.deg2rad(np.linspace(-25, 5, 32))
    A, E = np.meshgrid(az, el)
    dirs_l = np.stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)], -1).reshape(-1, 3)
    R = lidar_pose.rotation()
    o = np.array([lidar_pose.x, lidar_pose.y, lidar_pose.z])
    s, cls = hit(np.broadcast_to(o, dirs_l.shape), dirs_l @ R.T)
    keep = np.isfinite(s) & (s < 40)
    return (dirs_l * s[:, None])[keep], cls[keep]


def test_lidar_points_take_the_label_of_their_pixel():
    depth, cls = render()
    lidar_pose = Pose(0.5, 0.0, 1.8, 0.0, 0.0, 0.0)
    pts, truth = lidar_sweep(lidar_pose)
    R, t = lidar_to_optical(POSE, lidar_pose)
    conf = np.full(cls.shape, 0.9, np.float32)
    keep, lab, c, stats = lidar_labels(pts, R, t, CAM, cls, conf)
    assert stats.points == len(pts) and stats.labelled + stats.behind + stats.outside_image + stats.occluded == len(pts)
    assert stats.behind > 0 and stats.outside_image > 0 and stats.labelled > 500
    assert stats.occluded > 0  # the LiDAR, 0.3 m higher, sees the road behind the box where the camera sees the box
    assert (lab[keep] == truth[keep]).mean() > 0.97  # edge pixels may round to the neighbour
    assert (lab[~keep] == 255).all() and (c[keep] == 0.9).all() and (c[~keep] == 0).all()
    # a labelled car point lands within one 0.1 m cell of the face
    R_l = lidar_pose.rotation()
    base = pts @ R_l.T + np.array([lidar_pose.x, lidar_pose.y, lidar_pose.z])
    assert np.abs(base[keep & (lab == CAR)][:, 0] - BOX_X).max() < 0.1


def test_projection_matches_opencv_with_distortion_and_drops_folded_points():
    import cv2
    cam = CameraModel(240, 240, (200.0, 0, 120, 0, 200.0, 120, 0, 0, 1), (-0.25, 0.0, 0.001, 0.001, 0.0))
    rng = np.random.default_rng(0)
    p = np.c_[rng.uniform(-0.5, 0.5, (200, 2)), np.ones(200)] * rng.uniform(1, 20, (200, 1))
    uv, inside = project(p, cam)
    ref = cv2.projectPoints(p, np.zeros(3), np.zeros(3), cam.K, np.asarray(cam.d))[0].reshape(-1, 2)
    assert inside.sum() > 100
    np.testing.assert_allclose(uv[inside], ref[inside], atol=1e-6)
    far = np.array([[1.6, 0.0, 1.0]])  # 58 deg off-axis: this distortion polynomial folds it into view
    folded = cv2.projectPoints(far, np.zeros(3), np.zeros(3), cam.K, np.asarray(cam.d))[0].reshape(2)
    assert 0 <= folded[0] < 240 and 0 <= folded[1] < 240
    assert not project(far, cam)[1][0]


@pytest.mark.parametrize("model,d", [("plumb_bob", (-0.25, 0.07, 0.001, -0.002, 0.01)),
                                     ("rational_polynomial", (0.3, -0.1, 0.001, 0.002, 0.01, 0.5, -0.05, 0.02)),
                                     ("equidistant", (-0.01, 0.02, -0.003, 0.001)), ("plumb_bob", ())])
def test_numpy_distortion_equals_opencv(model, d):
    import cv2
    from fornet_ros.mapping.points import distort
    cam = CameraModel(640, 480, (500.0, 0.5, 320, 0, 505.0, 240, 0, 0, 1), d, model)
    rng = np.random.default_rng(1)
    xy = rng.uniform(-0.6, 0.6, (500, 2))
    obj = np.c_[xy, np.ones(500)].reshape(-1, 1, 3)
    zero = np.zeros(3)
    if model == "equidistant":
        ref = cv2.fisheye.projectPoints(obj, zero, zero, cam.K, np.asarray(d))[0]
    else:
        ref = cv2.projectPoints(obj, zero, zero, cam.K, np.asarray(d) if d else None)[0]
    np.testing.assert_allclose(distort(xy[:, 0], xy[:, 1], cam), ref.reshape(-1, 2), atol=1e-6)


def test_stamp_matcher_drops_beyond_the_slop():
    m = StampMatcher(slop_ns=20_000_000, keep=3)
    for s in (0, 100_000_000, 200_000_000, 300_000_000):
        m.add(s, s)
    assert m.match(110_000_000) == 100_000_000
    assert m.match(150_000_000) is None  # 50 ms from the nearest
    assert m.match(0) is None  # evicted (keep=3)
    assert (m.matched, m.unmatched) == (1, 2)


def test_cloud_layout_is_pixel_aligned():
    depth, cls = render()
    pts, _ = depth_points(depth.astype(np.float32), CAM, "32FC1")
    cloud = cloud_array(pts, cls, np.ones(cls.shape, np.float32))
    assert CLOUD_DTYPE.itemsize == 20 and cloud.shape == cls.shape
    v, u = 200, 160
    assert cloud[v, u]["label"] == cls[v, u] and math.isclose(cloud[v, u]["z"], depth[v, u], rel_tol=1e-6)


def test_costmap_adapter_uses_depth_gates_by_confidence_and_decays():
    """SemanticCostmap (ROS message side, fake node): depth moves the raised box's cells to its face;
    pixels below costmap_min_confidence stay unknown; costmap_decay_s keeps the box for a while
    after the camera stops seeing it."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header
    from fornet_ros.mapping import LayerConfig
    from fornet_ros.node.params import NodeParams
    from fornet_ros.ros.costmap import CostmapFrame, SemanticCostmap
    from ros_harness import FakeNode
    from fornet_ros.classes import CITYSCAPES_CLASSES
    depth, cls = render(bottom=0.5)
    pts, _ = depth_points(depth.astype(np.float32), CAM, "32FC1")
    cfg = LayerConfig.from_dict({"ground_classes": ["road"], "obstacle_classes": ["car"],
                                 "layers": [{"name": "car", "classes": ["car"], "cost": 100},
                                            {"name": "road", "classes": ["road"], "cost": 0}]}, CITYSCAPES_CLASSES)
    params = NodeParams(use_tf=False, grid_width=200, grid_height=100, grid_origin=(0.0, -5.0),
                        costmap_decay_s=1.0, costmap_min_confidence=0.5)
    node = FakeNode()
    cm = SemanticCostmap(node, params, cfg, {"cam0": POSE})
    info = CameraInfo(height=CAM.height, width=CAM.width, k=list(map(float, CAM.k)), distortion_model="plumb_bob")
    header = Header(stamp=Time(sec=5), frame_id="cam0_optical")
    conf = np.where(np.arange(CAM.width)[None, :] < CAM.width // 2, 0.9, 0.1).astype(np.float32)
    conf = np.broadcast_to(conf, cls.shape)
    assert cm.update([CostmapFrame("cam0", header, cls, info, 10.0, conf, pts)], now_s=10.0) == {}
    car = np.array(node.published["semantic_costmap/car"][-1].data, np.int8).reshape(100, 200)
    iy, ix = np.nonzero(car > 0)
    assert len(ix) > 3 and np.abs((ix + 0.5) * 0.1 - BOX_X).max() <= 0.1  # at the face, not 3 m behind
    y = -5.0 + (iy + 0.5) * 0.1
    assert (y > -0.05).all()  # only the confident left half of the image (y > 0: left of the camera)
    road = np.array(node.published["semantic_costmap/road"][-1].data, np.int8).reshape(100, 200)
    assert (road[:50] == -1).all() and (road[55:] == 0).any()  # right half unknown, left half seen
    # the camera now sees only road where the box was, and its labels leave the fusion window
    cm.update([CostmapFrame("cam0", header, np.zeros_like(cls), info, 10.6, conf, None)], now_s=10.6)
    faded = np.array(node.published["semantic_costmap/car"][-1].data, np.int8).reshape(100, 200)
    assert (faded[car > 0] == 40).all()  # 100 faded for 0.6 of 1.0 s
    cm.update([CostmapFrame("cam0", header, np.zeros_like(cls), info, 11.2, conf, None)], now_s=11.2)
    gone = np.array(node.published["semantic_costmap/car"][-1].data, np.int8).reshape(100, 200)
    assert (gone[car > 0] == 0).all()  # past decay_s: what the camera sees now (free)


def test_depth_registration_reprojects_a_depth_camera_into_the_colour_camera():
    """A 160x120 depth camera 5 cm to the right of the 320x240 colour camera, other intrinsics:
    registered into the colour camera, its depth matches the colour camera's own rendered depth
    (the nearest point wins where several land on a pixel)."""
    from fornet_ros.mapping.points import register_depth
    dcam = CameraModel(160, 120, (110.0, 0, 80.0, 0, 110.0, 60.0, 0, 0, 1))
    dpose = Pose(0.0, -0.05, 1.5, 0.0, 0.0, 0.0)
    depth_d, _ = render(0.0, dcam, dpose)
    truth, _ = render()
    Rd, td = dpose.optical_in_base()
    Rc, tc = POSE.optical_in_base()
    pts, _ = depth_points(depth_d.astype(np.float32), dcam, "32FC1", max_range=60)
    reg = register_depth(pts, CAM, Rc.T @ Rd, Rc.T @ (td - tc))
    assert reg.shape == (CAM.height, CAM.width) and reg.dtype == np.float32
    both = (reg > 0) & (truth > 0) & (truth < 30)
    assert both.sum() > 0.1 * reg.size  # 19,200 depth pixels (the sky gives none) for 76,800 colour pixels
    err = np.abs(reg[both] - truth[both]) / truth[both]
    assert np.median(err) < 0.01 and np.percentile(err, 95) < 0.05
    assert (reg[truth == 0] == 0).mean() > 0.95  # sky stays empty


def test_the_node_registers_depth_from_the_depth_cameras_info_and_the_extrinsic():
    """LabelledPoints (the node's depth plumbing, fake node): with depth_registration the depth
    camera's own CameraInfo and depth_extrinsic place its points in the colour camera, and the
    pixel-aligned cloud matches the colour camera's rendered depth; without the depth CameraInfo
    the frame is counted, not guessed."""
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from fornet_ros.inference import Segmentation
    from fornet_ros.node.params import NodeParams
    from fornet_ros.ros.conversions import fill_image
    from fornet_ros.ros.points3d import LabelledPoints
    from ros_harness import FakeNode
    dcam = CameraModel(160, 120, (110.0, 0, 80.0, 0, 110.0, 60.0, 0, 0, 1))
    dpose = Pose(0.0, -0.05, 1.5, 0.0, 0.0, 0.0)  # 5 cm right of the colour camera: x_optical + 0.05
    params = NodeParams(cameras=("cam0",), depth_enabled=True, depth_registration=True,
                        depth_extrinsic=(0.05, 0.0, 0.0, 0.0, 0.0, 0.0))
    node = FakeNode()
    lp = LabelledPoints(node, params, {"cam0": POSE}, None, None)
    hdr = Header(stamp=Time(sec=7), frame_id="cam0_optical")
    depth_d, _ = render(0.0, dcam, dpose)
    node.callbacks["cam0/depth/image_raw"](fill_image(Image(), depth_d.astype(np.float32), hdr, "32FC1"))
    truth, cls = render()
    info = CameraInfo(height=CAM.height, width=CAM.width, k=list(map(float, CAM.k)), distortion_model="plumb_bob")
    result = Segmentation(cls, None, np.ones(cls.shape, np.float32), None)
    assert lp.process("cam0", hdr, result, info) is None and lp.counts["cam0"]["depth_without_depth_camera_info"] == 1
    node.callbacks["cam0/depth/camera_info"](CameraInfo(height=120, width=160, k=list(map(float, dcam.k)),
                                                        distortion_model="plumb_bob"))
    pts = lp.process("cam0", hdr, result, info)
    assert pts.shape == (CAM.height, CAM.width, 3) and len(node.published["cam0/semantic/points"]) == 1
    z = pts[..., 2]
    both = np.isfinite(z) & (truth > 0) & (truth < 30)
    assert both.sum() > 0.1 * z.size and np.median(np.abs(z[both] - truth[both]) / truth[both]) < 0.01


def test_projection_bounds_are_the_binned_image_with_or_without_roi():
    """A 2x-binned camera publishes 320x240: a point beyond the sensor's right edge (full-res
    u = 700, binned 350) is outside, with or without an ROI; the same one inside stays inside."""
    k = (500.0, 0, 320.0, 0, 500.0, 240.0, 0, 0, 1)
    pts = np.array([[(700 - 320) / 500, 0.0, 1.0], [(600 - 320) / 500, 0.0, 1.0]])
    for roi in ((0, 0, 0, 0), (0, 0, 480, 640)):
        cam = CameraModel(640, 480, k, binning_x=2, binning_y=2, roi=roi)
        assert cam.image_size == (240, 320)
        uv, inside = project(pts, cam)
        assert inside.tolist() == [False, True] and uv[1].round(3).tolist() == [300.0, 120.0]
