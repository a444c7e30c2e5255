"""The packaged real clip (CamVid 0006R0, issue #12): it loads, and its ground truth projects into a
plausible metric costmap with the estimated calibration (docs/calibration_camvid.md). No ../shared."""

import math

import numpy as np
import pytest

from fornet_ros.tools import clip
from fornet_ros.tools.bags import open_reader, typestore
from fornet_ros.classes import CITYSCAPES_CLASSES
from fornet_ros.mapping import DEFAULT_LAYER_CONFIG, GridFuser, GridSpec, LayerConfig, build_lookup

CAMVID_TRAIN_IDS = {0, 1, 2, 4, 5, 7, 8, 10, 11, 12, 13, 255}  # what CAMVID_TO_TRAINID can produce
RES = 0.1
GRID = GridSpec(RES, 300, 300, (0.0, -15.0))  # the demo's grid: 30 m ahead, +-15 m
CAR_FRAME = 3210  # a red Renault Clio (rear view) parked on the road ~9 m ahead on the left
TOLERANCE_CELLS = 2


@pytest.fixture(scope="module")
def loaded():
    return clip.load_clip()


def test_clip_is_in_the_package_and_small():
    path = clip.demo_clip_path()
    assert (path / "metadata.yaml").is_file() and len(list(path.glob("*.mcap"))) == 1
    assert (path.parent / "NOTICE.md").is_file() and "CC BY-NC 4.0" in (path.parent / "NOTICE.md").read_text()
    assert sum(p.stat().st_size for p in path.iterdir()) < 4 * 2**20


def test_clip_loads(loaded):
    assert len(loaded) == 30 == len(clip.FRAME_NUMBERS)
    r = open_reader(clip.demo_clip_path())
    topics = {c.topic: c.msgtype for c in r.connections}
    first = {m[0].topic: m for m in r.messages()}
    r.close()
    assert topics == {"/camera/image_raw/compressed": "sensor_msgs/msg/CompressedImage",
                      "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
                      "/camera/ground_truth/labels": "sensor_msgs/msg/Image"}
    conn, _, raw = first["/camera/image_raw/compressed"]
    msg = typestore().deserialize_cdr(raw, conn.msgtype)
    assert "jpeg" in msg.format and bytes(msg.data[:2]) == b"\xff\xd8"  # JPEG SOI marker
    # stamps at the real spacing: every 3rd annotated frame, 90 video frames at 30 fps = 3 s
    assert np.all(np.diff(loaded.stamps) == 3 * 10**9)
    info = loaded.camera_info
    assert (info["width"], info["height"]) == (480, 360) and info["distortion_model"] == "plumb_bob"
    assert info["k"] == list(clip.K) == [420.0, 0.0, 239.5, 0.0, 560.0, 179.5, 0.0, 0.0, 1.0]
    assert info["d"] == [0.0] * 5 and info["p"][:3] == [420.0, 0.0, 239.5]
    for rgb, gt in zip(loaded.images, loaded.labels):
        assert rgb.shape == (360, 480, 3) and rgb.dtype == np.uint8
        assert gt is not None and gt.shape == (360, 480)
        assert set(np.unique(gt).tolist()) <= CAMVID_TRAIN_IDS
        assert (gt == 0).mean() > 0.15  # road in every frame
    assert sum((gt == 13).any() for gt in loaded.labels) >= 20  # cars in most frames


def ground_point(u: float, v: float) -> tuple[float, float]:
    """Where the pinhole model + pose put pixel (u, v) on z = 0, written out independently of
    fornet_ros.mapping: ray (xn, yn, 1) in the optical frame, pitched down by `pitch` about y."""
    x, y, h, _, pitch, _ = clip.DEMO_CAMERA_POSE
    xn, yn = (u - clip.CX) / clip.FX, (v - clip.CY) / clip.FY
    fwd, up = math.cos(pitch) - math.sin(pitch) * yn, -math.sin(pitch) - math.cos(pitch) * yn
    t = h / -up
    return x + t * fwd, y - t * xn


def project(labels):
    cfg = LayerConfig.from_dict(DEFAULT_LAYER_CONFIG, CITYSCAPES_CLASSES)
    lk = build_lookup(clip.camera_model(), clip.camera_pose(), GRID, labels.shape, max_range=30.0)
    f = GridFuser(GRID, cfg)
    f.add(labels, lk)
    return f.grids(), f


def fuser_lookup_footprint(labels):
    lk = build_lookup(clip.camera_model(), clip.camera_pose(), GRID, labels.shape, max_range=30.0)
    return lk.footprint_range(RES)


def cell(x, y):
    return int((y - GRID.origin[1]) / RES), int((x - GRID.origin[0]) / RES)


def test_clip_frame_costmap_free_road_and_car(loaded):
    i = clip.FRAME_NUMBERS.index(CAR_FRAME)
    gt = loaded.labels[i]
    grids, fuser = project(gt)
    comb, vehicles = grids["combined"], grids["vehicles"]
    # free road ahead: the corridor 4..10 m in front, 1 m either side, is observed and costs 0
    # (the bottom image row sees the ground 3.7 m ahead: nearer is outside the field of view)
    r0, c0 = cell(4.0, -1.0)
    r1, c1 = cell(10.0, 1.0)
    ahead = comb[r0:r1, c0:c1]
    assert (ahead[ahead >= 0] == 0).all() and (ahead >= 0).mean() > 0.9, np.unique(ahead, return_counts=True)
    # up to ~8 m every 0.1 m cell is hit by pixel centres; beyond, one image row (360 rows) spans
    # > 0.1 m of ground and cells take the pixel covering them: no unknown range bands (issue #21)
    assert (ahead[:, :int(4.0 / RES)] == 0).all()
    assert (ahead >= 0).all()
    assert 7.5 < fuser_lookup_footprint(gt) < 9.0  # sqrt(0.1 m * fy 560 * 1.2 m) = 8.2 m
    # the Clio's tyre contact: the lowest car pixel of columns 10..110 (the left of the image)
    car = gt[:, 10:110] == 13
    rows = np.where(car.any(0), 359 - np.argmax(car[::-1], 0), -1)
    u = 10 + int(np.argmax(rows))
    v = int(rows.max())
    assert gt[v + 1, u] == 0  # the car touches the road
    x, y = ground_point(u, v)
    assert 8.0 < x < 10.5 and 2.0 < y < 4.0, (u, v, x, y)  # a car ~9 m ahead, ~3 m to the left
    r, c = cell(x, y)
    near = vehicles[r - TOLERANCE_CELLS:r + TOLERANCE_CELLS + 1, c - TOLERANCE_CELLS:c + TOLERANCE_CELLS + 1]
    assert (near == 100).any(), (x, y)
    pts, cls = fuser.obstacle_points()
    d = np.hypot(pts[cls == 13, 0] - x, pts[cls == 13, 1] - y)
    assert d.min() < TOLERANCE_CELLS * RES
    # and the car is occupied, never free: no vehicle cell nearer than the contact (rays stop at it)
    occ = np.argwhere(vehicles == 100)
    xs = (occ[:, 1] + 0.5) * RES + GRID.origin[0]
    ys = (occ[:, 0] + 0.5) * RES + GRID.origin[1]
    left = (ys > 1.5) & (ys < 4.5)
    assert xs[left].min() > x - TOLERANCE_CELLS * RES


def test_clip_car_width_is_plausible(loaded):
    """The calibration gives metric sizes: the Clio's rear face (columns ~11..77 at its tyre row)
    is 1.4-1.7 m wide on the ground (a Clio Mk1 is 1.63 m wide)."""
    gt = loaded.labels[clip.FRAME_NUMBERS.index(CAR_FRAME)]
    lk = build_lookup(clip.camera_model(), clip.camera_pose(), GRID, gt.shape, max_range=30.0)  # the node's projection
    (xl, yl), (xr, yr) = lk.xy_map.reshape(*gt.shape, 2)[247, [11, 77]]
    assert lk.cell_map.reshape(gt.shape)[247, [11, 77]].min() >= 0  # both on the grid
    assert 1.3 < math.hypot(xr - xl, yr - yl) < 1.8
    assert (gt[200:240, 11:77] == 13).mean() > 0.8  # the labels agree: car there
