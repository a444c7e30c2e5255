"""Flat-ground projection against analytic pinhole geometry."""

import math

import cv2
import numpy as np
import pytest

from fornet_ros.classes import CITYSCAPES_CLASSES
from fornet_ros.mapping import (DEFAULT_LAYER_CONFIG, UNKNOWN, CameraModel, GeometryError, GridFuser, GridSpec,
                                 LayerConfig, Pose, build_lookup, contact_mask, transform_from_quaternion)

ROAD, CAR, SKY, PERSON = 0, 13, 10, 11
W, H, F = 200, 150, 100.0
CAM = CameraModel(W, H, (F, 0, 100.0, 0, F, 75.0, 0, 0, 1))
GRID = GridSpec(resolution=0.1, width=300, height=200, origin=(0.0, -10.0))
CFG = LayerConfig.from_dict({
    "ground_classes": ["road", "sidewalk"], "obstacle_classes": ["car", "person"],
    "layers": [{"name": "road", "classes": ["road"], "cost": 10}, {"name": "cars", "classes": ["car"], "cost": 100},
               {"name": "people", "classes": ["person"], "cost": 90}]}, CITYSCAPES_CLASSES)


def ground_x(row, pitch=0.0, z=1.5, f=F, cy=75.0):
    """Distance ahead at which the centre of pixel row ``row`` meets the ground."""
    return z / math.tan(math.atan((row - cy) / f) + pitch)


def cell_x(grid, x):
    return int(math.floor((x - grid.origin[0]) / grid.resolution))


def cell_y(grid, y):
    return int(math.floor((y - grid.origin[1]) / grid.resolution))


def fuse(labels, pose, cam=CAM, grid=GRID, cfg=CFG, max_range=30.0):
    f = GridFuser(grid, cfg)
    f.add(labels, build_lookup(cam, pose, grid, labels.shape, max_range=max_range))
    return f


@pytest.mark.parametrize("pitch", [0.0, 0.1])
def test_road_rows_land_where_pinhole_geometry_puts_them(pitch):
    labels = np.full((H, W), SKY, np.uint8)
    labels[76:] = ROAD  # everything below the principal row
    g = fuse(labels, Pose(z=1.5, pitch=pitch)).grids()
    road = g["road"]
    for row in (90, 110, 140):
        x = ground_x(row, pitch)
        if x > 30:
            continue
        cx, cy = cell_x(GRID, x), cell_y(GRID, 0.0)
        assert road[cy, cx - 1:cx + 2].max() == 10, (row, x)
    # nothing beyond the farthest road pixel (row 76 for pitch 0 -> 1.5*100/1.0 = 150 m > max_range 30)
    marked = np.argwhere(road == 10)
    xs = GRID.origin[0] + (marked[:, 1] + 0.5) * GRID.resolution
    assert xs.max() <= 30.0 + GRID.resolution
    assert (g["cars"] == 100).sum() == 0 and (g["cars"] == 0).sum() > 0  # seen, free of cars


def test_nothing_above_the_horizon_is_marked():
    labels = np.full((H, W), ROAD, np.uint8)  # "road" even in the sky: must not project
    lk = build_lookup(CAM, Pose(z=1.5), GRID, labels.shape, max_range=1000)
    assert lk.first_row >= 75  # principal row = horizon for a level camera
    rows = np.flatnonzero(lk.cell_map >= 0) // W
    assert rows.min() >= 75


def test_obstacle_is_placed_at_its_ground_contact_not_smeared():
    labels = np.full((H, W), ROAD, np.uint8)
    labels[:76] = SKY
    labels[80:101, 90:111] = CAR  # bottom row 100 -> contact distance 1.5*100/25 = 6 m
    g = fuse(labels, Pose(z=1.5)).grids()
    cars = np.argwhere(g["cars"] == 100)
    x_expected = ground_x(100)
    assert x_expected == pytest.approx(6.0)
    assert cars.size and np.abs(cars[:, 1] - cell_x(GRID, x_expected)).max() <= 1
    # lateral extent: columns 90..110 -> y = -(u - 100)/100 * 6 m, i.e. +0.6 .. -0.6 m
    ys = GRID.origin[1] + (cars[:, 0] + 0.5) * GRID.resolution
    assert ys.min() >= -0.6 - 0.15 and ys.max() <= 0.6 + 0.15
    # no smear: the car's upper pixels would project at 7.5-30 m along the same rays
    assert (g["cars"][:, cell_x(GRID, 6.5):] == 100).sum() == 0
    assert g["combined"].max() == 100


def test_unknown_stays_unknown_and_behind_camera_unobserved():
    labels = np.full((H, W), ROAD, np.uint8)
    g = fuse(labels, Pose(x=5.0, z=1.5)).grids()
    assert g["road"][:, :cell_x(GRID, 5.0)].max() == UNKNOWN  # behind a forward camera
    assert (g["combined"] == UNKNOWN).sum() > 0 and (g["combined"] == 10).sum() > 0


def test_two_cameras_fuse_into_one_grid():
    grid = GridSpec(0.1, 300, 200, (-15.0, -10.0))
    labels = np.full((H, W), ROAD, np.uint8)
    labels[80:101, 95:106] = PERSON
    f = GridFuser(grid, CFG)
    f.add(labels, build_lookup(CAM, Pose(z=1.5), grid, labels.shape))
    f.add(labels, build_lookup(CAM, Pose(z=1.5, yaw=math.pi), grid, labels.shape))
    people = np.argwhere(f.grids()["people"] == 90)
    xs = grid.origin[0] + (people[:, 1] + 0.5) * grid.resolution
    assert (np.abs(xs - 6.0) < 0.2).any() and (np.abs(xs + 6.0) < 0.2).any()
    pts, labs = f.obstacle_points()
    assert len(pts) == 2 * 11 and set(labs.tolist()) == {PERSON}


def test_distortion_is_removed():
    d = (-0.3, 0.1, 0.0, 0.0, 0.0)
    cam = CameraModel(W, H, CAM.k, d)
    # where does the ground point (6 m ahead, 0.5 m left) appear in the distorted image?
    p_opt = np.array([[-0.5, 1.5, 6.0]])  # optical frame: x right, y down, z forward
    uv, _ = cv2.projectPoints(p_opt, np.zeros(3), np.zeros(3), cam.K, np.asarray(d))
    u, v = uv.ravel()
    labels = np.full((H, W), ROAD, np.uint8)
    labels[: int(round(v)) + 1, int(round(u))] = CAR  # obstacle column ending at that pixel
    labels[:76] = SKY
    labels[: int(round(v)) + 1, int(round(u))] = CAR
    pts, _ = fuse(labels, Pose(z=1.5), cam=cam).obstacle_points()
    assert len(pts) == 1
    assert pts[0] == pytest.approx([6.0, 0.5], abs=0.15)
    # without undistortion the point would be off by more than a cell
    pts_nd, _ = fuse(labels, Pose(z=1.5), cam=CAM).obstacle_points()
    assert np.abs(pts_nd[0] - [6.0, 0.5]).max() > 0.2


def test_scaled_labels_and_binning():
    labels = np.full((H // 2, W // 2), ROAD, np.uint8)
    lk_half = build_lookup(CAM, Pose(z=1.5), GRID, labels.shape)
    binned = CameraModel(W * 2, H * 2, (2 * F, 0, 200.0, 0, 2 * F, 150.0, 0, 0, 1), binning_x=2, binning_y=2)
    lk_bin = build_lookup(binned, Pose(z=1.5), GRID, (H, W))
    lk_full = build_lookup(CAM, Pose(z=1.5), GRID, (H, W))
    np.testing.assert_array_equal(lk_bin.cell_map, lk_full.cell_map)
    assert lk_half.first_row * 2 == pytest.approx(lk_full.first_row, abs=2)


@pytest.mark.parametrize("kw,msg", [
    (dict(width=0), "size"), (dict(k=(0,) * 9), "focal"), (dict(k=(np.nan,) * 9), "finite"),
    (dict(k=(1, 2, 3)), "9 finite"), (dict(d=(np.inf,)), "D must be finite"),
    (dict(distortion_model="weird"), "unsupported"),
])
def test_bad_camera_info_rejected(kw, msg):
    args = dict(width=W, height=H, k=CAM.k)
    args.update(kw)
    with pytest.raises(GeometryError, match=msg):
        CameraModel(**args)


def test_bad_layer_configs():
    with pytest.raises(GeometryError, match="unknown classes"):
        LayerConfig.from_dict({"layers": [{"name": "x", "classes": ["unicorn"], "cost": 1}]}, CITYSCAPES_CLASSES)
    with pytest.raises(GeometryError, match="cost"):
        LayerConfig.from_dict({"layers": [{"name": "x", "classes": ["road"], "cost": 300}]}, CITYSCAPES_CLASSES)
    with pytest.raises(GeometryError, match="missing"):
        LayerConfig.from_dict({"layerz": []}, CITYSCAPES_CLASSES)
    with pytest.raises(GeometryError, match="both ground and obstacle"):
        LayerConfig.from_dict({"ground_classes": ["road"], "obstacle_classes": ["road"], "layers": []}, CITYSCAPES_CLASSES)
    with pytest.raises(GeometryError, match="pose"):
        Pose(z=float("nan"))
    LayerConfig.from_dict(DEFAULT_LAYER_CONFIG, CITYSCAPES_CLASSES)


def test_contact_mask_runs():
    lut = np.zeros(256, bool)
    lut[CAR] = True
    col = np.array([[0], [13], [13], [0], [13], [13]], np.uint8)
    assert contact_mask(col, lut)[:, 0].tolist() == [False, False, True, False, False, True]


def test_tf_quaternion_matches_pose():
    pose = Pose(1.0, 2.0, 1.5, 0.0, 0.2, 0.3)
    R, t = pose.optical_in_base()
    q = _quat_from_matrix(R)
    R2, t2 = transform_from_quaternion(t, q)
    np.testing.assert_allclose(R2, R, atol=1e-9)
    lk1 = build_lookup(CAM, pose, GRID, (H, W))
    lk2 = build_lookup(CAM, (R2, t2), GRID, (H, W))
    np.testing.assert_array_equal(lk1.cell_map, lk2.cell_map)


def _quat_from_matrix(R):
    w = math.sqrt(max(0.0, 1 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    return x, y, z, w


def test_shipped_layer_config_equals_builtin_default():
    import yaml
    from pathlib import Path
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "semantic_costmap.yaml").read_text())
    assert cfg == DEFAULT_LAYER_CONFIG


def test_fusion_window_keeps_cameras_received_within_the_window():
    from fornet_ros.mapping import FusionWindow
    w = FusionWindow(0.5)
    assert w.current(0.0) == []
    w.add("front", 10.0, "f0")
    w.add("rear", 10.4, "r0")
    assert w.current(10.45) == [("front", "f0"), ("rear", "r0")]
    w.add("rear", 10.5, "r1")
    assert w.current(10.5) == [("front", "f0"), ("rear", "r1")]
    assert w.current(10.7) == [("rear", "r1")]  # front was received 0.7 s ago: out (and forgotten)
    w.add("front", 10.8, "f1")
    assert w.current(10.8) == [("rear", "r1"), ("front", "f1")]
    assert w.current(20.0) == []  # both silent: nothing left to fuse


def test_pose_from_list():
    assert Pose.from_list([1, 2, 3, 0.1, 0.2, 0.3]) == Pose(1.0, 2.0, 3.0, 0.1, 0.2, 0.3)
    with pytest.raises(GeometryError, match=r"pose needs 6 numbers \[x, y, z, roll, pitch, yaw\], got \[1.0, 2.0\]"):
        Pose.from_list([1.0, 2.0])
    with pytest.raises(GeometryError, match="finite"):
        Pose.from_list([0, 0, float("inf"), 0, 0, 0])


def test_load_layer_config(tmp_path):
    from fornet_ros.mapping import load_layer_config
    assert [l.name for l in load_layer_config("", CITYSCAPES_CLASSES).layers] == [
        l["name"] for l in DEFAULT_LAYER_CONFIG["layers"]]
    f = tmp_path / "layers.yaml"
    f.write_text("layers:\n  - {name: drivable, classes: [road, sidewalk], cost: 0}\n")
    cfg = load_layer_config(str(f), CITYSCAPES_CLASSES)
    assert [(l.name, l.class_ids, l.cost) for l in cfg.layers] == [("drivable", (0, 1), 0)]
    f.write_text("- just a list\n")
    with pytest.raises(GeometryError, match=f"costmap layer config {f}: expected a mapping with a 'layers' list"):
        load_layer_config(str(f), CITYSCAPES_CLASSES)
    with pytest.raises(GeometryError, match="No such file"):
        load_layer_config(str(tmp_path / "nope.yaml"), CITYSCAPES_CLASSES)
    f.write_text("layers: [{name: x, classes: [unicorn], cost: 1}]\n")
    with pytest.raises(GeometryError, match="unknown classes"):
        load_layer_config(str(f), CITYSCAPES_CLASSES)


def test_grid_memory_holds_fades_and_forgets_unseen_cells():
    from fornet_ros.mapping import GridMemory
    mem = GridMemory(decay_s=2.0)
    g = lambda *v: {"car": np.array([v], np.int8)}  # noqa: E731 - one row of cells
    # cells: [obstacle seen then unseen, obstacle then seen free, free then unseen, never seen]
    assert mem(g(100, 100, 0, -1), 10.0)["car"].tolist() == [[100, 100, 0, -1]]
    assert mem(g(-1, 0, -1, -1), 11.0)["car"].tolist() == [[50, 50, 0, -1]]  # half-way: half the cost
    assert mem(g(-1, 0, -1, -1), 11.5)["car"].tolist() == [[25, 25, 0, -1]]
    assert mem(g(-1, 0, -1, -1), 12.5)["car"].tolist() == [[-1, 0, -1, -1]]  # past decay_s: unknown again
    assert mem(g(30, -1, -1, -1), 12.6)["car"].tolist() == [[30, 0, -1, -1]]  # a new mark starts over
    assert mem(g(20, -1, -1, -1), 13.6)["car"].tolist() == [[20, 0, -1, -1]]  # max(20, 30 faded to 15)
    off = GridMemory(0.0)
    assert off(g(100, -1, 0, -1), 1.0)["car"].tolist() == [[100, -1, 0, -1]]
    assert off(g(-1, -1, -1, -1), 1.1)["car"].tolist() == [[-1, -1, -1, -1]]  # off: only the current frames


def test_far_field_cells_take_the_pixel_covering_them_no_stripes():
    """With 150 rows, f = 100 and 0.1 m cells, one row spans more than a cell beyond ~3.9 m: every cell
    of a road seen out to 22 m is observed (no free/unknown stripes), and a filled cell carries the
    label of the pixel its centre projects into. (Row 81 meets the ground at 25 m, row 82 at 21.4 m:
    cells between are covered by row 81, whose ray reaches max_range, so the last metres stay unknown.)"""
    labels = np.full((H, W), SKY, np.uint8)
    labels[76:] = ROAD
    lk = build_lookup(CAM, Pose(z=1.5), GRID, labels.shape, max_range=25.0)
    assert lk.filled_cells > 0
    road = fuse(labels, Pose(z=1.5), max_range=25.0).grids()["road"]
    ahead = road[cell_y(GRID, -0.5):cell_y(GRID, 0.5), cell_x(GRID, 4.0):cell_x(GRID, 22.0)]
    assert (ahead == 10).all(), np.unique(ahead, return_counts=True)
    # the rule, cell by cell: cell centre -> optical frame -> pixel (u, v) covering it
    filled_px = lk.ground_pixels[-lk.filled_cells:]
    filled_cells = lk.ground_cells[-lk.filled_cells:]
    iy, ix = np.divmod(filled_cells, GRID.width)
    x = GRID.origin[0] + (ix + 0.5) * GRID.resolution
    y = GRID.origin[1] + (iy + 0.5) * GRID.resolution
    u = np.floor(100.0 + F * (-y) / x + 0.5).astype(int)  # optical x = -y, z = x (level camera)
    v = np.floor(75.0 + F * 1.5 / x + 0.5).astype(int)
    np.testing.assert_array_equal(filled_px, v * W + u)
    # no cell beyond max_range is filled, and a cell outside the image stays unknown
    assert np.hypot(x, y).max() <= 25.0
    assert road[cell_y(GRID, 9.0), cell_x(GRID, 5.0)] == UNKNOWN  # 9 m left at 5 m ahead: outside the 90° view


def test_footprint_range_matches_the_pinhole_row_spacing():
    lk = build_lookup(CAM, Pose(z=1.5), GRID, (H, W), max_range=30.0)
    # rows v, v+1 meet the ground at 1.5 F / (v - 75) and 1.5 F / (v + 1 - 75): find where they are > 0.1 m apart
    expect = min(1.5 * F / (v - 75.0) for v in range(76, H - 1)
                 if 1.5 * F / (v - 75.0) - 1.5 * F / (v + 1 - 75.0) > 0.1 and 1.5 * F / (v - 75.0) <= 30.0)
    assert lk.footprint_range(0.1) == pytest.approx(expect, rel=1e-5)
    assert 3.5 < expect < 4.2  # ~ sqrt(res * f * h) = 3.87 m
    assert lk.footprint_range(100.0) is None  # 100 m cells: every pixel step stays inside one cell


def test_fuser_keeps_the_hits_and_observed_cells_its_grids_are_made_of():
    labels = np.full((H, W), ROAD, np.uint8)
    labels[:76] = SKY
    labels[80:101, 90:111] = CAR
    f = fuse(labels, Pose(z=1.5))
    g = f.grids()
    for i, name in enumerate(("road", "cars", "people")):
        hit = f.hits[i].reshape(g[name].shape)
        cost = CFG.layers[i].cost
        np.testing.assert_array_equal(g[name] == cost, hit | ((g[name] == 0) & (cost == 0)))
        np.testing.assert_array_equal(g[name] >= 0, f.observed.reshape(g[name].shape))
    assert f.hits[1].sum() > 0 and not f.hits[2].any()
